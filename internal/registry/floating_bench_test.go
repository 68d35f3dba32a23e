package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/registry"
)

// BenchmarkVersionPush measures a manifest push under a new version tag
// with and without floating-tags=semver, in one run on one database:
// team/* has the policy, plain/* does not, and each holds 50
// repositories of about 200 versions. Each iteration pushes one version
// to each, in alternating order, so that a busy machine slows both
// alike; the metrics are each one's time per push and the difference,
// which is what the floating-tag moves cost (the goal: at most 1 ms).
func BenchmarkVersionPush(b *testing.B) {
	const repos, versions = 50, 200
	svc := floatingService(b, openSQLitePolicies(b))
	ctx := registry.WithActor(context.Background(), "alice")
	for _, ns := range []string{"team", "plain"} {
		// Each repository starts with 200 version tags (on one manifest,
		// so that setting them up takes one write).
		for r := range repos {
			var tags []string
			for i := range versions {
				tags = append(tags, fmt.Sprintf("1.%d.%d", i/20, i%20))
			}
			if _, err := svc.PutManifest(ctx, fmt.Sprintf("%s/app%d", ns, r), "latest", ociManifest, imageManifest(fmt.Sprint(ns, " seed ", r)), tags); err != nil {
				b.Fatal(err)
			}
		}
	}
	push := func(ns string, i int) time.Duration {
		repo, tag := fmt.Sprintf("%s/app%d", ns, i%repos), fmt.Sprintf("2.%d.%d", i/repos/100, i/repos%100)
		body := imageManifest(fmt.Sprint(ns, " bench ", i))
		start := time.Now()
		if _, err := svc.PutManifest(ctx, repo, tag, ociManifest, body, nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var semver, off time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			semver += push("team", i)
			off += push("plain", i)
		} else {
			off += push("plain", i)
			semver += push("team", i)
		}
		i++
	}
	b.ReportMetric(float64(semver.Nanoseconds())/float64(i), "ns-semver/push")
	b.ReportMetric(float64(off.Nanoseconds())/float64(i), "ns-off/push")
	b.ReportMetric(float64((semver-off).Nanoseconds())/float64(i), "ns-added/push")
	// The moves happened where the policy asks for them, and only there.
	last := i - 1
	repo, want := fmt.Sprintf("%s/app%d", "team", last%repos), fmt.Sprintf("2.%d.%d", last/repos/100, last/repos%100)
	floating, err := svc.GetManifest(ctx, repo, "2")
	if err != nil {
		b.Fatal(err)
	}
	if pushed, err := svc.GetManifest(ctx, repo, want); err != nil || pushed.Digest != floating.Digest {
		b.Fatalf("%s:2 = %s; want %s (%v)", repo, floating.Digest, want, err)
	}
	if _, err := svc.GetManifest(ctx, fmt.Sprintf("plain/app%d", last%repos), "2"); err == nil {
		b.Fatal("a floating tag moved without the policy")
	}
}
