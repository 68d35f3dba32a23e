package registry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wharf/wharf/internal/registry"
)

// BenchmarkVersionPush measures a manifest push under a new version tag
// with and without floating-tags=semver, into repositories that hold about
// 200 versions each: the difference is what the floating-tag moves cost
// (the goal: at most 1 ms).
func BenchmarkVersionPush(b *testing.B) {
	const repos, versions = 50, 200
	for _, policy := range []string{"off", "semver"} {
		b.Run("floating-tags="+policy, func(b *testing.B) {
			svc := floatingService(b, openSQLitePolicies(b))
			ctx := registry.WithActor(context.Background(), "alice")
			// Each repository starts with 200 version tags (on one
			// manifest, so that setting them up takes one write).
			for r := range repos {
				var tags []string
				for i := range versions {
					tags = append(tags, fmt.Sprintf("1.%d.%d", i/20, i%20))
				}
				if _, err := svc.PutManifest(ctx, fmt.Sprintf("team/app%d", r), "latest", ociManifest, imageManifest(fmt.Sprint("seed ", r)), tags); err != nil {
					b.Fatal(err)
				}
			}
			if err := svc.Policies().Set(ctx, "team/*", map[string]string{registry.KeyFloatingTags: policy}); err != nil {
				b.Fatal(err)
			}
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = imageManifest(fmt.Sprint("bench ", i))
			}
			b.ResetTimer()
			for i := range b.N {
				repo, tag := fmt.Sprintf("team/app%d", i%repos), fmt.Sprintf("2.%d.%d", i/repos/100, i/repos%100)
				if _, err := svc.PutManifest(ctx, repo, tag, ociManifest, bodies[i], nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
