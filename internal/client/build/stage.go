package build

import (
	"context"
	"errors"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// defaultPath is the PATH docker's builders set when the base has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stage is one FROM … section being built: its base image, the layers and
// history entries added so far, and the config they lead to.
type stage struct {
	b          *builder
	name       string
	base       v1.Image
	baseTree   func() (tree, error) // the base's filesystem, read on first use
	fs         tree
	adds       []mutate.Addendum
	cfg        v1.Config
	author     string
	args       vars
	cmdSet     bool
	layerType  types.MediaType
	baseName   string // the FROM image's full name, "" for scratch
	baseDigest string
	built      v1.Image
}

// stage runs stage i.
func (b *builder) stage(ctx context.Context, i int) (*stage, error) {
	ins := b.df.stages[i]
	from := ins[0]
	b.printStep(from)
	flags, err := from.parseFlags("platform")
	if err != nil {
		return nil, err
	}
	if len(from.args) != 1 && stageName(from) == "" {
		return nil, from.errorf("want FROM [--platform=P] IMAGE [AS NAME]")
	}
	ref, err := b.df.expand(from, from.args[0], b.globalArg)
	if err != nil {
		return nil, err
	}
	platform := b.opts.Platform
	if p, ok := flags["platform"]; ok {
		if p, err = b.df.expand(from, p, b.globalArg); err != nil {
			return nil, err
		}
		pp, err := v1.ParsePlatform(p)
		if err != nil || pp.OS == "" || pp.Architecture == "" {
			return nil, from.errorf("invalid --platform %q: want os/arch[/variant]", p)
		}
		platform = *pp
	}
	s := &stage{b: b, name: stageName(from), args: vars{}}
	fromImage := false
	switch prev, perr := b.stageByName(ref); {
	case strings.EqualFold(ref, "scratch"):
		if s.base, err = scratch(platform); err != nil {
			return nil, err
		}
		s.baseTree = func() (tree, error) { return tree{}, nil }
	case perr == nil:
		if s.base, err = prev.image(); err != nil {
			return nil, err
		}
		s.baseTree = prev.tree
		s.baseName, s.baseDigest = prev.baseName, prev.baseDigest
	case !errors.Is(perr, errNotStage):
		return nil, from.errorf("%v", perr)
	default:
		img, name, err := b.res.Resolve(ctx, ref, platform)
		if err != nil {
			return nil, from.errorf("%v", err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		s.base, s.baseName, s.baseDigest, fromImage = plainManifest{img}, name, d.String(), true
		s.baseTree = func() (tree, error) { return readTree(img) }
	}
	cf, err := s.base.ConfigFile()
	if err != nil {
		return nil, from.errorf("base image config: %v", err)
	}
	cf = cf.DeepCopy()
	if len(cf.Config.OnBuild) > 0 && fromImage {
		return nil, from.errorf("%s has ONBUILD triggers, which wharf image build does not run; build with `docker build`", ref)
	}
	s.cfg, s.author = cf.Config, cf.Author
	if cf.OS != "windows" && !slices.ContainsFunc(s.cfg.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		// Both of docker's builders give a stage without PATH the default one.
		s.cfg.Env = append(s.cfg.Env, "PATH="+defaultPath)
	}
	s.layerType = types.OCILayer
	if mt, err := s.base.MediaType(); err == nil && mt == types.DockerManifestSchema2 {
		s.layerType = types.DockerLayer
	}
	for _, in := range ins[1:] {
		b.printStep(in)
		if err := s.run(ctx, in); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// tree returns the stage's filesystem, reading the base's on first use.
func (s *stage) tree() (tree, error) {
	if s.fs == nil {
		t, err := s.baseTree()
		if err != nil {
			return nil, err
		}
		s.fs = t.clone()
	}
	return s.fs, nil
}

// image returns the stage's image: the base, the layers and history
// added, and the final config.
func (s *stage) image() (v1.Image, error) {
	if s.built != nil {
		return s.built, nil
	}
	img, err := mutate.Append(s.base, s.adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = s.cfg
	cf.Author = s.author
	cf.Created = v1.Time{Time: s.b.created}
	if s.built, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	return s.built, nil
}

// env is what a word in this stage is expanded with: the declared ARGs,
// overridden by the config's environment, as in docker.
func (s *stage) env() vars {
	v := vars{}
	for k, x := range s.args {
		v[k] = x
	}
	for _, e := range s.cfg.Env {
		k, x, _ := strings.Cut(e, "=")
		v[k] = x
	}
	return v
}

// history records an instruction that changed only the config.
func (s *stage) history(in instruction) {
	s.adds = append(s.adds, mutate.Addendum{History: v1.History{
		Created: v1.Time{Time: s.b.created}, CreatedBy: strings.TrimSpace(in.text), EmptyLayer: true}})
}

// layer records an instruction that wrote paths of the stage's tree.
func (s *stage) layer(in instruction, paths []string) error {
	h := v1.History{Created: v1.Time{Time: s.b.created}, CreatedBy: strings.TrimSpace(in.text)}
	if len(paths) == 0 {
		h.EmptyLayer = true
		s.adds = append(s.adds, mutate.Addendum{History: h})
		return nil
	}
	w := layerWriter{dir: s.b.opts.TempDir, epoch: s.b.opts.SourceDateEpoch, mediaType: s.layerType}
	l, err := w.write(s.fs, paths)
	if err != nil {
		return in.errorf("%v", err)
	}
	s.adds = append(s.adds, mutate.Addendum{Layer: l, History: h})
	return nil
}

// run carries out one instruction of the stage.
func (s *stage) run(ctx context.Context, in instruction) error {
	env := s.env()
	expand := func(w string) (string, error) { return s.b.df.expand(in, w, env) }
	if in.cmd != "copy" && in.cmd != "add" && in.cmd != "healthcheck" && len(in.flags) > 0 {
		return in.errorf("unknown flag: %s", in.flags[0])
	}
	switch in.cmd {
	case "arg":
		_, err := s.b.declareArgs(in, env, s.args)
		return err
	case "env", "label":
		kvs, err := in.keyValues()
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			k, err := expand(kv[0])
			if err != nil {
				return err
			}
			v, err := expand(kv[1])
			if err != nil {
				return err
			}
			if in.cmd == "env" {
				s.cfg.Env = setEnv(s.cfg.Env, k, v)
				continue
			}
			if s.cfg.Labels == nil {
				s.cfg.Labels = map[string]string{}
			}
			s.cfg.Labels[k] = v
		}
	case "workdir":
		return s.workdir(in, expand)
	case "user", "stopsignal", "maintainer":
		if len(in.args) != 1 {
			return in.errorf("requires exactly one argument")
		}
		v, err := expand(in.args[0])
		if err != nil {
			return err
		}
		switch in.cmd {
		case "user":
			s.cfg.User = v
		case "stopsignal":
			s.cfg.StopSignal = v
		default:
			s.author = v
		}
	case "expose":
		if err := s.expose(in, expand); err != nil {
			return err
		}
	case "cmd", "entrypoint", "shell":
		return s.command(in)
	case "volume":
		vs, err := expandArgs(in, expand)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if strings.TrimSpace(v) == "" {
				return in.errorf("VOLUME specified can not be an empty string")
			}
			if s.cfg.Volumes == nil {
				s.cfg.Volumes = map[string]struct{}{}
			}
			s.cfg.Volumes[v] = struct{}{}
		}
	case "healthcheck":
		if err := s.healthcheck(in); err != nil {
			return err
		}
	case "onbuild":
		trigger := strings.TrimSpace(in.text)
		if i := strings.IndexFunc(trigger, func(r rune) bool { return r == ' ' || r == '\t' }); i > 0 {
			trigger = strings.TrimSpace(trigger[i:])
		}
		s.cfg.OnBuild = append(s.cfg.OnBuild, trigger)
	case "copy", "add":
		return s.copy(ctx, in, expand)
	}
	s.history(in)
	return nil
}

// expandArgs expands each of the instruction's words; it needs one.
func expandArgs(in instruction, expand func(string) (string, error)) ([]string, error) {
	if len(in.args) == 0 {
		return nil, in.errorf("requires at least one argument")
	}
	out := make([]string, len(in.args))
	for i, a := range in.args {
		v, err := expand(a)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// setEnv sets k=v in env, replacing an earlier value in place.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			out := append([]string(nil), env...)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(append([]string(nil), env...), k+"="+v)
}

// workdir sets the working directory and creates it, as BuildKit does,
// owned by the current numeric USER; an existing directory adds no layer.
func (s *stage) workdir(in instruction, expand func(string) (string, error)) error {
	if len(in.args) != 1 {
		return in.errorf("requires exactly one argument")
	}
	wd, err := expand(in.args[0])
	if err != nil {
		return err
	}
	if !path.IsAbs(wd) {
		base := s.cfg.WorkingDir
		if base == "" {
			base = "/"
		}
		wd = path.Join(base, wd)
	}
	wd = path.Clean(wd)
	s.cfg.WorkingDir = wd
	t, err := s.tree()
	if err != nil {
		return err
	}
	op := copyOp{in: in, now: s.b.created}
	if u, g, ok := numericUser(s.cfg.User); ok {
		op.chown = &owner{uid: u, gid: g}
	}
	var made []string
	if err := op.mkdir(t, rel(wd), &made); err != nil {
		return err
	}
	if len(made) == 0 {
		return s.layer(in, nil)
	}
	paths, err := op.withParents(t, made)
	if err != nil {
		return err
	}
	return s.layer(in, paths)
}

// numericUser parses USER uid[:gid].
func numericUser(u string) (int, int, bool) {
	if u == "" {
		return 0, 0, true
	}
	us, gs, hasG := strings.Cut(u, ":")
	uid, err := strconv.Atoi(us)
	if err != nil {
		return 0, 0, false
	}
	gid := 0
	if hasG {
		if gid, err = strconv.Atoi(gs); err != nil {
			return 0, 0, false
		}
	}
	return uid, gid, true
}

// expose adds PORT[/PROTO] and ranges (8000-8002/udp) to ExposedPorts.
func (s *stage) expose(in instruction, expand func(string) (string, error)) error {
	vs, err := expandArgs(in, expand)
	if err != nil {
		return err
	}
	for _, v := range vs {
		port, proto, _ := strings.Cut(v, "/")
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return in.errorf("invalid proto: %s", proto)
		}
		lo, hi, isRange := strings.Cut(port, "-")
		first, err1 := strconv.ParseUint(lo, 10, 16)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || last < first {
			return in.errorf("invalid containerPort: %s", port)
		}
		if s.cfg.ExposedPorts == nil {
			s.cfg.ExposedPorts = map[string]struct{}{}
		}
		for p := first; p <= last; p++ {
			s.cfg.ExposedPorts[strconv.FormatUint(p, 10)+"/"+proto] = struct{}{}
		}
	}
	return nil
}

// command handles CMD, ENTRYPOINT and SHELL. The shell form runs through
// the stage's SHELL (default /bin/sh -c); words are not expanded, as in
// docker: the shell does that at run time.
func (s *stage) command(in instruction) error {
	args := in.args
	if in.cmd == "shell" {
		if !in.json || len(args) == 0 {
			return in.errorf(`SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]`)
		}
		s.cfg.Shell = args
		s.history(in)
		return nil
	}
	if !in.json && len(args) > 0 {
		sh := s.cfg.Shell
		if len(sh) == 0 {
			sh = []string{"/bin/sh", "-c"}
		}
		args = append(append([]string(nil), sh...), args[0])
	}
	if in.cmd == "cmd" {
		s.cfg.Cmd = args
		s.cmdSet = true
	} else {
		s.cfg.Entrypoint = args
		// Docker resets a CMD inherited from the base image, which was
		// meant for the base's own entrypoint.
		if !s.cmdSet {
			s.cfg.Cmd = nil
		}
	}
	s.history(in)
	return nil
}

// healthcheck handles HEALTHCHECK NONE and HEALTHCHECK [flags] CMD ….
func (s *stage) healthcheck(in instruction) error {
	if len(in.args) == 0 {
		return in.errorf("requires at least one argument")
	}
	flags, err := in.parseFlags("interval", "timeout", "start-period", "retries")
	if err != nil {
		return err
	}
	typ := strings.ToUpper(in.args[0])
	hc := &v1.HealthConfig{}
	switch {
	case typ == "NONE":
		if len(in.args) > 1 || len(flags) > 0 {
			return in.errorf("HEALTHCHECK NONE takes no arguments")
		}
		hc.Test = []string{"NONE"}
	case typ != "CMD":
		return in.errorf("unknown type %q in HEALTHCHECK (try CMD)", in.args[0])
	case len(in.args) < 2:
		return in.errorf("missing command after HEALTHCHECK CMD")
	case in.json:
		hc.Test = append([]string{"CMD"}, in.args[1:]...)
	default:
		hc.Test = []string{"CMD-SHELL", in.args[1]}
	}
	durations := map[string]*time.Duration{"interval": &hc.Interval, "timeout": &hc.Timeout, "start-period": &hc.StartPeriod}
	for name, into := range durations {
		v, ok := flags[name]
		if !ok {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || (d != 0 && d < time.Millisecond) {
			return in.errorf("--%s=%s: want a duration of at least 1ms (30s, 1m)", name, v)
		}
		*into = d
	}
	if v, ok := flags["retries"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return in.errorf("--retries=%s: want a number of at least 0", v)
		}
		hc.Retries = n
	}
	s.cfg.Healthcheck = hc
	return nil
}

// copy handles COPY and ADD.
func (s *stage) copy(ctx context.Context, in instruction, expand func(string) (string, error)) error {
	allowed := []string{"from", "chown", "chmod", "link"}
	if in.cmd == "add" {
		allowed = []string{"chown", "chmod", "link"}
	}
	flags, err := in.parseFlags(allowed...)
	if err != nil {
		return err
	}
	if len(in.args) == 1 {
		return in.errorf("requires at least two arguments, but only one was provided. Destination could not be determined")
	}
	words, err := expandArgs(in, expand)
	if err != nil {
		return err
	}
	op := copyOp{in: in, srcs: words[:len(words)-1], dest: words[len(words)-1], add: in.cmd == "add",
		now: s.b.created, tmp: s.b.opts.TempDir, src: s.b.ctxTree, context: true}
	if !path.IsAbs(op.dest) {
		wd := s.cfg.WorkingDir
		if wd == "" {
			wd = "/"
		}
		slash := strings.HasSuffix(op.dest, "/") || op.dest == "." || strings.HasSuffix(op.dest, "/.")
		op.dest = path.Join(wd, op.dest)
		if slash {
			op.dest += "/"
		}
	}
	if v, ok := flags["chown"]; ok {
		if v, err = expand(v); err != nil {
			return err
		}
		if op.chown, err = numericOwner(in, v); err != nil {
			return err
		}
	}
	if v, ok := flags["chmod"]; ok {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			return in.errorf("invalid --chmod=%s: want an octal mode such as 0755", v)
		}
		mode := int64(m)
		op.chmod = &mode
	}
	if from, ok := flags["from"]; ok {
		if from, err = expand(from); err != nil {
			return err
		}
		if op.src, err = s.fromTree(ctx, in, from); err != nil {
			return err
		}
		op.context = false
	}
	t, err := s.tree()
	if err != nil {
		return err
	}
	paths, err := op.apply(t)
	if err != nil {
		return err
	}
	return s.layer(in, paths)
}

// fromTree is the filesystem COPY --from reads: an earlier stage's, or an
// image's (resolved like a FROM).
func (s *stage) fromTree(ctx context.Context, in instruction, from string) (tree, error) {
	prev, err := s.b.stageByName(from)
	if err == nil {
		return prev.tree()
	}
	if !errors.Is(err, errNotStage) {
		return nil, in.errorf("--from=%s: %v", from, err)
	}
	cf, err := s.base.ConfigFile()
	if err != nil {
		return nil, err
	}
	p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	img, _, err := s.b.res.Resolve(ctx, from, p)
	if err != nil {
		return nil, in.errorf("--from=%s: %v", from, err)
	}
	return readTree(img)
}
