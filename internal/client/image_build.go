package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/client/build"
	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
)

// BuildOptions are `wharf image build`'s flags.
type BuildOptions struct {
	Remote
	// Tags name the result (-t, repeatable); none leaves it untagged.
	Tags []string
	// File is the Dockerfile (-f); "" means CONTEXT/Dockerfile.
	File string
	// BuildArgs are --build-arg KEY=VALUE (or KEY, from the environment).
	BuildArgs []string
	// Platform ("os/arch[/variant]") is the target platform; "" means
	// the host's.
	Platform string
	// Target builds the named stage instead of the last.
	Target string
	// Push pushes every tag after the build.
	Push bool
	// SourceDateEpoch is $SOURCE_DATE_EPOCH (seconds since 1970); a
	// --build-arg SOURCE_DATE_EPOCH wins over it.
	SourceDateEpoch string
	// Env looks up bare --build-arg names; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Now is the clock for the creation time without an epoch.
	Now func() time.Time
}

// ImageBuild builds a Dockerfile without RUN from the context directory,
// stores the image in the local store under its tags and, with Push,
// pushes them. Base images come from the local store, else from their
// registry with the client's credentials.
func ImageBuild(ctx context.Context, st *store.Store, contextDir string, opts BuildOptions, out io.Writer) error {
	var tags []reference.Named
	for _, t := range opts.Tags {
		named, err := ref.Parse(t)
		if err != nil {
			return fmt.Errorf("invalid tag %q: %w", t, err)
		}
		if _, ok := named.(reference.Canonical); ok {
			return fmt.Errorf("invalid tag %q: a digest cannot be a tag", t)
		}
		tags = append(tags, reference.TagNameOnly(named))
	}
	if opts.Push && len(tags) == 0 {
		return errors.New("--push needs a tag (-t NAME:TAG)")
	}
	platform := store.HostPlatform()
	if opts.Platform != "" {
		p, err := v1.ParsePlatform(opts.Platform)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("invalid platform %q: want os/arch[/variant]", opts.Platform)
		}
		platform = *p
	}
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	epoch, err := sourceDateEpoch(opts, env)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(contextDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("unable to prepare context: path %q not found or not a directory", contextDir)
	}
	// Layers are spooled beside the store, on the same disk as their
	// final place, and removed once stored.
	tmp, err := os.MkdirTemp(st.Root(), ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img, err := build.Build(ctx, baseResolver{st: st, remote: opts.Remote}, build.Options{
		ContextDir: contextDir, Dockerfile: opts.File, BuildArgs: opts.BuildArgs, Env: env,
		Platform: platform, Target: opts.Target, SourceDateEpoch: epoch, Now: opts.Now,
		TempDir: tmp, Out: out,
	})
	if err != nil {
		return err
	}
	if err := st.WriteImage(ctx, img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Successfully built %s\n", id.Hex[:12])
	for _, t := range tags {
		if err := st.Tag(ctx, t, d); err != nil {
			return err
		}
		fmt.Fprintf(out, "Successfully tagged %s\n", ref.Familiar(t))
	}
	if !opts.Push {
		return nil
	}
	for _, t := range tags {
		if err := Push(ctx, st, t.String(), PushOptions{Remote: opts.Remote}, out); err != nil {
			return err
		}
	}
	return nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH from a --build-arg, else from
// the option (the environment).
func sourceDateEpoch(opts BuildOptions, env func(string) (string, bool)) (*time.Time, error) {
	v := opts.SourceDateEpoch
	for _, a := range opts.BuildArgs {
		if k, val, ok := strings.Cut(a, "="); k == "SOURCE_DATE_EPOCH" {
			if !ok {
				val, _ = env(k)
			}
			v = val
		}
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: want seconds since 1970-01-01", v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// baseResolver finds FROM images as docker does: in the local store when
// it has the platform, else at their registry.
type baseResolver struct {
	st     *store.Store
	remote Remote
}

// Resolve implements build.Resolver.
func (r baseResolver) Resolve(ctx context.Context, s string, p v1.Platform) (v1.Image, string, error) {
	named, err := ref.ParseName(s)
	if err != nil {
		return nil, "", err
	}
	if _, ok := named.(reference.Canonical); !ok {
		named = reference.TagNameOnly(named)
	}
	if r.st != nil {
		img, _, err := r.st.PlatformImage(ctx, named.String(), p)
		if err == nil {
			if cf, err := img.ConfigFile(); err == nil && platformMatches(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}, p) {
				return img, named.String(), nil
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, "", err
		}
	}
	desc, err := r.get(ctx, named)
	if err != nil {
		return nil, "", err
	}
	img, err := resolvePlatform(desc, p)
	if err != nil {
		return nil, "", err
	}
	if r.st != nil {
		// As a pull would: a push of what is built on it can then mount
		// the base's layers from their repository.
		if ls, err := img.Layers(); err == nil {
			var ds []string
			for _, l := range ls {
				if d, err := l.Digest(); err == nil {
					ds = append(ds, d.String())
				}
			}
			_ = newOrigins(r.st.Root()).record(ref.Domain(named), ref.Path(named), ds)
		}
	}
	return img, named.String(), nil
}

// get fetches the manifest named from its registry.
func (r baseResolver) get(ctx context.Context, named reference.Named) (*remote.Descriptor, error) {
	t, err := r.remote.target(ctx, ref.Domain(named))
	if err != nil {
		return nil, err
	}
	nr, err := ggcrRef(named, t)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(nr, t.opts...)
	if err != nil {
		return nil, explain(err, t.host, ref.Familiar(named))
	}
	return desc, nil
}
