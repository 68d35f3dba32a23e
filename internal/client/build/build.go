// Package build builds images from Dockerfiles that run no commands
// (no RUN): what golden base images and most application images on them
// need (FROM, COPY, ADD, ENV, ARG, LABEL, WORKDIR, USER, EXPOSE, CMD,
// ENTRYPOINT, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL). Without a container
// runtime every step is a change of the config or a layer written from
// files, so a build is reproducible: with SOURCE_DATE_EPOCH the same inputs
// give the same digest.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// AnnotationBaseName is the OCI annotation naming the image a build
	// started FROM.
	AnnotationBaseName = "org.opencontainers.image.base.name"
	// AnnotationBaseDigest is the OCI annotation with the manifest digest
	// of that image.
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// Resolver finds base images (FROM and COPY --from) by reference.
type Resolver interface {
	// Resolve returns the image ref names for platform, and its fully
	// qualified name (for the base annotation).
	Resolve(ctx context.Context, ref string, platform v1.Platform) (img v1.Image, name string, err error)
}

// Options say what to build.
type Options struct {
	// ContextDir is the build context.
	ContextDir string
	// Dockerfile is the Dockerfile's path; "" means ContextDir/Dockerfile.
	Dockerfile string
	// BuildArgs are --build-arg values; a name without "=" takes its value
	// from Env.
	BuildArgs []string
	// Env looks up the environment for bare --build-arg names; nil means
	// none.
	Env func(string) (string, bool)
	// Platform is the target platform.
	Platform v1.Platform
	// Target names the stage to build; "" means the last.
	Target string
	// SourceDateEpoch, when set, is the image's creation time and the
	// latest mtime in the layers written (SOURCE_DATE_EPOCH).
	SourceDateEpoch *time.Time
	// Now is the clock for the creation time without an epoch.
	Now func() time.Time
	// TempDir holds the layers until the result is stored; it must outlive
	// the returned image's use.
	TempDir string
	// Out receives docker's "Step N/M : …" lines and warnings.
	Out io.Writer
}

// Build runs the Dockerfile and returns the final stage's image, with the
// OCI base annotations of its FROM image when it has one.
func Build(ctx context.Context, res Resolver, opts Options) (v1.Image, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dfPath := opts.Dockerfile
	if dfPath == "" {
		dfPath = filepath.Join(opts.ContextDir, "Dockerfile")
	}
	f, err := os.Open(dfPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read the Dockerfile: %w", err)
	}
	df, err := parseDockerfile(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	// BuildKit reads Dockerfile.dockerignore beside a Dockerfile in
	// preference to the context's .dockerignore.
	ignore := dfPath + ".dockerignore"
	if _, err := os.Stat(ignore); err != nil {
		ignore = filepath.Join(opts.ContextDir, ".dockerignore")
	}
	ctxTree, err := loadContext(opts.ContextDir, ignore)
	if err != nil {
		return nil, err
	}
	b := &builder{res: res, opts: opts, df: df, ctxTree: ctxTree, buildArgs: map[string]string{}, used: map[string]bool{}}
	if err := b.parseBuildArgs(); err != nil {
		return nil, err
	}
	created := opts.Now().UTC().Truncate(time.Second)
	if opts.SourceDateEpoch != nil {
		created = opts.SourceDateEpoch.UTC()
	}
	b.created = created
	last := len(df.stages) - 1
	if opts.Target != "" {
		last = slices.IndexFunc(df.stages, func(s []instruction) bool { return strings.EqualFold(stageName(s[0]), opts.Target) })
		if last < 0 {
			return nil, fmt.Errorf("target stage %q could not be found", opts.Target)
		}
	}
	b.total = len(df.globals)
	for _, s := range df.stages[:last+1] {
		b.total += len(s)
	}
	if err := b.globals(); err != nil {
		return nil, err
	}
	for i := 0; i <= last; i++ {
		st, err := b.stage(ctx, i)
		if err != nil {
			return nil, err
		}
		b.stages = append(b.stages, st)
	}
	var unused []string
	for k := range b.buildArgs {
		if !b.used[k] && !builtinArg(k) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		fmt.Fprintf(opts.Out, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
	final := b.stages[last]
	img, err := final.image()
	if err != nil {
		return nil, err
	}
	if final.baseName == "" {
		return img, nil
	}
	return mutate.Annotations(img, map[string]string{
		AnnotationBaseName:   final.baseName,
		AnnotationBaseDigest: final.baseDigest,
	}).(v1.Image), nil
}

// builder is one build's state.
type builder struct {
	res       Resolver
	opts      Options
	df        *dockerfile
	ctxTree   tree
	buildArgs map[string]string
	used      map[string]bool
	globalArg vars // ARGs before the first FROM, with the automatic platform ones
	stages    []*stage
	created   time.Time
	step      int
	total     int
}

func (b *builder) parseBuildArgs() error {
	for _, a := range b.opts.BuildArgs {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return fmt.Errorf("invalid --build-arg %q: want KEY=VALUE", a)
		}
		if !ok {
			if b.opts.Env == nil {
				continue
			}
			if v, ok = b.opts.Env(k); !ok {
				continue // docker skips a bare name that is not in the environment
			}
		}
		b.buildArgs[k] = v
	}
	return nil
}

// builtinArg reports the arguments BuildKit defines itself, which no
// Dockerfile need declare to be set.
func builtinArg(k string) bool {
	switch k {
	case "SOURCE_DATE_EPOCH", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY",
		"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy":
		return true
	}
	return false
}

// platformArgs are the automatic TARGET*/BUILD* arguments.
func platformArgs(target v1.Platform) vars {
	plat := func(p v1.Platform) string {
		s := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			s += "/" + p.Variant
		}
		return s
	}
	return vars{
		"TARGETPLATFORM": plat(target), "TARGETOS": target.OS, "TARGETARCH": target.Architecture, "TARGETVARIANT": target.Variant,
		"BUILDPLATFORM": plat(target), "BUILDOS": target.OS, "BUILDARCH": target.Architecture, "BUILDVARIANT": target.Variant,
	}
}

// globals evaluates the ARGs before the first FROM.
func (b *builder) globals() error {
	b.globalArg = platformArgs(b.opts.Platform)
	for _, in := range b.df.globals {
		b.printStep(in)
		if _, err := b.declareArgs(in, b.globalArg, b.globalArg); err != nil {
			return err
		}
	}
	return nil
}

// declareArgs evaluates `ARG a b=default …` into into: a --build-arg wins
// over the default, which is expanded with env; an argument without
// either takes its global value. It returns the names declared.
func (b *builder) declareArgs(in instruction, env, into vars) ([]string, error) {
	if len(in.args) == 0 {
		return nil, in.errorf("requires at least one argument")
	}
	var names []string
	for _, a := range in.args {
		k, def, hasDef := strings.Cut(a, "=")
		if k == "" {
			return nil, in.errorf("invalid argument %q", a)
		}
		names = append(names, k)
		if v, ok := b.buildArgs[k]; ok {
			b.used[k] = true
			into[k] = v
			continue
		}
		if hasDef {
			v, err := b.df.expand(in, def, env)
			if err != nil {
				return nil, err
			}
			into[k] = v
			continue
		}
		if v, ok := b.globalArg[k]; ok {
			into[k] = v
		}
	}
	return names, nil
}

// stageName is the AS name of a FROM instruction, or "".
func stageName(from instruction) string {
	if len(from.args) == 3 && strings.EqualFold(from.args[1], "as") {
		return from.args[2]
	}
	return ""
}

// printStep prints docker's legacy-builder progress line.
func (b *builder) printStep(in instruction) {
	b.step++
	fmt.Fprintf(b.opts.Out, "Step %d/%d : %s\n", b.step, b.total, strings.TrimSpace(in.text))
}

// numericOwner parses a numeric --chown (uid[:gid]); a uid alone is
// also the gid, as in docker.
func numericOwner(in instruction, s string) (*owner, error) {
	u, g, hasG := strings.Cut(s, ":")
	uid, err := strconv.Atoi(u)
	if err != nil || uid < 0 {
		return nil, in.errorf("--chown=%s: only numeric user and group IDs are supported (uid[:gid]); user names need the image's /etc/passwd, which wharf does not read", s)
	}
	gid := uid
	if hasG {
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return nil, in.errorf("--chown=%s: only numeric user and group IDs are supported (uid[:gid])", s)
		}
	}
	return &owner{uid: uid, gid: gid}, nil
}

// scratch is the empty image FROM scratch starts with: OCI media types,
// the target platform.
func scratch(p v1.Platform) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.RootFS.Type = "layers"
	return mutate.ConfigFile(img, cf)
}

// errNotStage says a --from or FROM name is not an earlier stage.
var errNotStage = errors.New("not a stage")

// stageByName finds an earlier stage by AS name or index.
func (b *builder) stageByName(name string) (*stage, error) {
	for _, s := range b.stages {
		if s.name != "" && strings.EqualFold(s.name, name) {
			return s, nil
		}
	}
	if i, err := strconv.Atoi(name); err == nil {
		if i >= 0 && i < len(b.stages) {
			return b.stages[i], nil
		}
		return nil, fmt.Errorf("stage %d is not an earlier stage", i)
	}
	return nil, errNotStage
}
