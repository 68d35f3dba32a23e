package build

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestBuild_RunIsRefusedNamingTheLine(t *testing.T) {
	for _, df := range []string{
		"FROM scratch\nCOPY a /a\n\n# comment\nRUN echo hi\n",
		"FROM scratch\nCOPY a /a\nLABEL x=1 \\\n  y=2\nrun [\"echo\"]\n",
		"FROM scratch\nCOPY a /a\nENV a=b\nONBUILD RUN make\n",
	} {
		dir := writeContext(t, map[string]string{"Dockerfile": df, "a": "a"})
		_, err := run(t, dir, nil)
		if !errors.Is(err, ErrRunNotSupported) {
			t.Fatalf("%q: err = %v, want ErrRunNotSupported", df, err)
		}
		for _, want := range []string{"line 5", "docker build", "buildah"} {
			if !strings.Contains(err.Error(), want) && !(want == "line 5" && strings.Contains(err.Error(), "line 4")) {
				t.Errorf("%q: error %q does not say %q", df, err, want)
			}
		}
	}
}

func TestBuild_RejectsWhatItCannotDo(t *testing.T) {
	for name, tc := range map[string]struct{ df, want string }{
		"unknown instruction": {"FROM scratch\nFOO bar\n", "line 2: unknown instruction: FOO"},
		"before FROM":         {"ENV a=b\nFROM scratch\n", "only ARG may come before FROM"},
		"no FROM":             {"ARG x\n", "no FROM"},
		"unknown flag":        {"FROM scratch\nCOPY --foo=1 a /a\n", "unknown flag: --foo=1"},
		"chown by name":       {"FROM scratch\nCOPY --chown=app:app a /a\n", "only numeric"},
		"ADD of a URL":        {"FROM scratch\nADD https://example.com/x.tgz /x\n", "downloads nothing"},
		"COPY of a URL":       {"FROM scratch\nCOPY https://example.com/x /x\n", "can't be a URL"},
		"missing source":      {"FROM scratch\nCOPY nope /x\n", "nope: not found in the build context"},
		"many sources":        {"FROM scratch\nCOPY a b /x\n", "must be a directory and end with a /"},
		"SHELL not JSON":      {"FROM scratch\nSHELL /bin/bash -c\n", "JSON form"},
		"bad EXPOSE":          {"FROM scratch\nEXPOSE http\n", "invalid containerPort"},
		"missing image":       {"FROM nothing:1\n", "line 1: FROM: pull access denied for nothing:1"},
		"heredoc":             {"FROM scratch\nCOPY <<EOF /x\nhi\nEOF\n", "heredocs"},
		"unknown target":      {"FROM scratch AS a\n", `target stage "b" could not be found`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tc.df, "a": "a", "b": "b"})
			_, err := run(t, dir, nil, func(o *Options) {
				if name == "unknown target" {
					o.Target = "b"
				}
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestBuild_ArgsAndSubstitution(t *testing.T) {
	base := baseImage(t, v1.Config{Env: []string{"PATH=/usr/bin", "FROMBASE=base"}}, layerOf(t, file{name: "etc/", typ: '5', mode: 0o755}))
	df := `ARG TAG=1
ARG REG
FROM ${REG:-golden}/base:$TAG AS app
ARG TAG
ARG GREETING=hello
ARG OVERRIDDEN=default
ARG UNSET
ENV A=1 B=$A
ENV C=${A}-${B:-none} D="$GREETING world" E=${UNSET:-fallback} F=${GREETING:+set}
ENV A=2 G=$A
ENV PATH=$PATH:/app/bin
ARG FROMBASE=arg
LABEL "version"="v$TAG" built.by=$FROMBASE escaped=\$A overridden=$OVERRIDDEN
ENV TAG=env
LABEL tag=$TAG
`
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	var out strings.Builder
	img := mustBuild(t, dir, images{"golden/base:2": base}, func(o *Options) {
		o.BuildArgs = []string{"TAG=2", "OVERRIDDEN=given", "NEVERUSED=x"}
		o.Out = &out
	})
	cf := config(t, img)
	wantEnv := []string{"PATH=/usr/bin:/app/bin", "FROMBASE=base", "A=2", "B=", "C=1-none", "D=hello world", "E=fallback", "F=set", "G=1", "TAG=env"}
	if !reflect.DeepEqual(cf.Config.Env, wantEnv) {
		t.Errorf("Env\n got %q\nwant %q", cf.Config.Env, wantEnv)
	}
	wantLabels := map[string]string{"version": "v2", "built.by": "base", "escaped": "$A", "overridden": "given", "tag": "env"}
	if !reflect.DeepEqual(cf.Config.Labels, wantLabels) {
		t.Errorf("Labels\n got %v\nwant %v", cf.Config.Labels, wantLabels)
	}
	if !strings.Contains(out.String(), "[Warning] One or more build-args [NEVERUSED] were not consumed") {
		t.Errorf("no warning about the unused build-arg in:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Step 1/") {
		t.Errorf("no step lines in:\n%s", out.String())
	}
}

func TestBuild_ConfigInstructions(t *testing.T) {
	base := baseImage(t, v1.Config{Cmd: []string{"/bin/sh"}, Entrypoint: []string{"/old"}, WorkingDir: "/srv"},
		layerOf(t, file{name: "srv/", typ: '5', mode: 0o750, uid: 3}))
	df := `FROM base
WORKDIR app
WORKDIR /srv
USER 1000:1000
EXPOSE 80 53/udp 8000-8002/TCP
VOLUME ["/data", "/logs"]
VOLUME /cache
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --retries=3 CMD curl -f http://localhost/ || exit 1
ENTRYPOINT ["/app/server", "--port=80"]
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
MAINTAINER someone@example.com
ONBUILD COPY . /src
`
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	img := mustBuild(t, dir, images{"base": base})
	c := config(t, img)
	want := v1.Config{
		Env:        []string{"PATH=" + defaultPath}, // added, as docker does, to a base without PATH
		WorkingDir: "/srv", User: "1000:1000", StopSignal: "SIGQUIT",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}, "/logs": {}, "/cache": {}},
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
			Interval: 30 * time.Second, Timeout: 5 * time.Second, StartPeriod: time.Minute, Retries: 3},
		// ENTRYPOINT drops the CMD inherited from the base, as in docker.
		Entrypoint: []string{"/app/server", "--port=80"},
		Shell:      []string{"/bin/bash", "-o", "pipefail", "-c"},
		OnBuild:    []string{"COPY . /src"},
	}
	if !reflect.DeepEqual(c.Config, want) {
		t.Errorf("config\n got %+v\nwant %+v", c.Config, want)
	}
	if c.Author != "someone@example.com" {
		t.Errorf("Author = %q", c.Author)
	}
	// WORKDIR app made /srv/app (a layer with it and its parent); the
	// existing /srv made none.
	ls, _ := img.Layers()
	if len(ls) != 2 {
		t.Fatalf("%d layers, want the base's and WORKDIR app's", len(ls))
	}
	got := layerFiles(t, img, 1)
	if n := names(got); !slices.Equal(n, []string{"srv/", "srv/app/"}) {
		t.Errorf("WORKDIR layer holds %v", n)
	}
	if e := entry(t, got, "srv/"); e.mode != 0o750 || e.uid != 3 {
		t.Errorf("existing parent changed: %v", e)
	}
	if e := entry(t, got, "srv/app/"); e.mode != 0o755 || e.uid != 0 {
		t.Errorf("new workdir: %v", e)
	}
	var empty int
	for _, h := range c.History {
		if h.EmptyLayer {
			empty++
		}
	}
	if len(c.History) != 13 || empty != 11 {
		t.Errorf("history has %d entries (%d empty), want 13 (11 empty)", len(c.History), empty)
	}
}

func TestBuild_ShellFormUsesShell(t *testing.T) {
	df := "FROM scratch\nCMD echo $HOME\nSHELL [\"/bin/ash\", \"-c\"]\nENTRYPOINT exec server\nHEALTHCHECK NONE\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	c := config(t, mustBuild(t, dir, nil))
	if want := []string{"/bin/sh", "-c", "echo $HOME"}; !slices.Equal(c.Config.Cmd, want) {
		t.Errorf("Cmd = %q, want %q", c.Config.Cmd, want)
	}
	if want := []string{"/bin/ash", "-c", "exec server"}; !slices.Equal(c.Config.Entrypoint, want) {
		t.Errorf("Entrypoint = %q, want %q (CMD set in this stage stays)", c.Config.Entrypoint, want)
	}
	if c.Config.Healthcheck == nil || !slices.Equal(c.Config.Healthcheck.Test, []string{"NONE"}) {
		t.Errorf("Healthcheck = %+v", c.Config.Healthcheck)
	}
}

func TestBuild_PlatformOfScratch(t *testing.T) {
	df := "ARG TARGETARCH\nFROM --platform=linux/arm64/v8 scratch AS a\nFROM scratch\nARG TARGETARCH\nLABEL arch=$TARGETARCH\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	c := config(t, mustBuild(t, dir, nil, func(o *Options) { o.Platform = v1.Platform{OS: "linux", Architecture: "riscv64"} }))
	if c.OS != "linux" || c.Architecture != "riscv64" || c.Config.Labels["arch"] != "riscv64" {
		t.Errorf("platform %s/%s, label %q", c.OS, c.Architecture, c.Config.Labels["arch"])
	}
	if want := []string{"PATH=" + defaultPath}; !slices.Equal(c.Config.Env, want) {
		t.Errorf("Env of a stage FROM scratch = %q, want docker's default %q", c.Config.Env, want)
	}
	c = config(t, mustBuild(t, dir, nil, func(o *Options) { o.Target = "a" }))
	if c.Architecture != "arm64" || c.Variant != "v8" {
		t.Errorf("FROM --platform gave %s/%s", c.Architecture, c.Variant)
	}
}

func TestBuild_BaseAnnotations(t *testing.T) {
	base := baseImage(t, v1.Config{}, layerOf(t, file{name: "etc/", typ: '5', mode: 0o755}))
	d, _ := base.Digest()
	for name, df := range map[string]string{
		"FROM image":                 "FROM golden/base:1\nLABEL a=b\n",
		"FROM a stage FROM an image": "FROM scratch AS tools\nFROM golden/base:1 AS b\nFROM b\nCOPY --from=tools / /\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": df})
			m, err := mustBuild(t, dir, images{"golden/base:1": base}).Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.Annotations[AnnotationBaseName] != "registry.test/golden/base:1" || m.Annotations[AnnotationBaseDigest] != d.String() {
				t.Errorf("annotations %v, want base golden/base:1 at %s", m.Annotations, d)
			}
		})
	}
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM golden/base:1 AS b\nFROM scratch\n"})
	m, _ := mustBuild(t, dir, images{"golden/base:1": base}).Manifest()
	if len(m.Annotations) != 0 {
		t.Errorf("FROM scratch has annotations %v", m.Annotations)
	}
}

func TestBuild_ReproducibleWithSourceDateEpoch(t *testing.T) {
	df := "FROM scratch\nCOPY . /app/\nENV X=1\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df, "old.txt": "old", "new.txt": "new", "sub/x": "x"})
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "old.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	build := func(e time.Time, now time.Time) v1.Image {
		return mustBuild(t, dir, nil, func(o *Options) {
			o.SourceDateEpoch = &e
			o.Now = func() time.Time { return now }
		})
	}
	a := build(epoch, time.Now())
	b := build(epoch, time.Now().Add(time.Hour))
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two builds with one SOURCE_DATE_EPOCH: %s and %s", da, db)
	}
	c := config(t, a)
	if !c.Created.Time.Equal(epoch) || !c.History[0].Created.Time.Equal(epoch) {
		t.Errorf("created %v, history %v; want the epoch %v", c.Created, c.History[0].Created, epoch)
	}
	for _, f := range layerFiles(t, a, 0) {
		want := epoch // files newer than the epoch, and directories made by the build
		if f.name == "app/old.txt" {
			want = old
		}
		if !f.mtime.Equal(want) {
			t.Errorf("%s mtime %v, want %v", f.name, f.mtime, want)
		}
	}
	later := build(epoch.Add(time.Second), time.Now())
	dl, _ := later.Digest()
	if dl == da {
		t.Error("another SOURCE_DATE_EPOCH gave the same digest")
	}
	if !config(t, later).Created.Time.Equal(epoch.Add(time.Second)) {
		t.Error("created does not follow SOURCE_DATE_EPOCH")
	}
	// Without an epoch the image is created now, as docker does.
	now := time.Date(2026, 3, 3, 3, 3, 3, 0, time.UTC)
	nc := config(t, mustBuild(t, dir, nil, func(o *Options) { o.Now = func() time.Time { return now } }))
	if !nc.Created.Time.Equal(now) {
		t.Errorf("created %v without an epoch, want the clock's %v", nc.Created, now)
	}
}
