package client

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestApplyChanges_DockerfileInstructions(t *testing.T) {
	set := func(keys ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	tests := []struct {
		name    string
		changes []string
		want    v1.Config
	}{
		{"CMD exec form", []string{`CMD ["sh", "-c", "echo hi"]`}, v1.Config{Cmd: []string{"sh", "-c", "echo hi"}}},
		{"CMD shell form", []string{`cmd echo hi`}, v1.Config{Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{"ENTRYPOINT after CMD keeps it", []string{`CMD ["-l"]`, `ENTRYPOINT ["/bin/ls"]`},
			v1.Config{Cmd: []string{"-l"}, Entrypoint: []string{"/bin/ls"}}},
		{"ENV pairs with quotes and expansion", []string{`ENV A=1`, `ENV B="two words" C=${A}x D=$A A=2 E=$A`},
			// Within one ENV, $A is still the value from before it.
			v1.Config{Env: []string{"A=2", "B=two words", "C=1x", "D=1", "E=1"}}},
		{"ENV legacy form, replaced later", []string{`ENV PATH /bin:/usr/bin`, `ENV PATH=/opt/bin:$PATH`},
			v1.Config{Env: []string{"PATH=/opt/bin:/bin:/usr/bin"}}},
		{"LABEL", []string{`LABEL org.opencontainers.image.title="my app" team=web`},
			v1.Config{Labels: map[string]string{"org.opencontainers.image.title": "my app", "team": "web"}}},
		{"EXPOSE ports, protocols, ranges", []string{`EXPOSE 80 53/udp 8000-8001`},
			v1.Config{ExposedPorts: set("80/tcp", "53/udp", "8000/tcp", "8001/tcp")}},
		{"USER", []string{`USER 1000:1000`}, v1.Config{User: "1000:1000"}},
		{"WORKDIR absolute then relative", []string{`WORKDIR /app`, `WORKDIR src`}, v1.Config{WorkingDir: "/app/src"}},
		{"VOLUME JSON and words", []string{`VOLUME ["/data"]`, `VOLUME /logs /cache`}, v1.Config{Volumes: set("/data", "/logs", "/cache")}},
		{"STOPSIGNAL", []string{`STOPSIGNAL SIGINT`}, v1.Config{StopSignal: "SIGINT"}},
		{"several lines in one change, continuation, comment", []string{"# set up\nUSER app\nCMD echo \\\n  hi"},
			v1.Config{User: "app", Cmd: []string{"/bin/sh", "-c", "echo   hi"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got v1.Config
			if err := applyChanges(&got, tt.changes); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestApplyChanges_RejectsWhatDockerRejects(t *testing.T) {
	for _, tc := range []struct{ change, want string }{
		{"RUN make", "RUN is not a valid change command"},
		{"FROM alpine", "FROM is not a valid change command"},
		{"STOPSIGNAL SIGNOPE", "Invalid signal: SIGNOPE"},
		{"EXPOSE 80/icmp", "invalid proto: icmp"},
		{"EXPOSE http", "invalid containerPort: http"},
		{"ENV ONLYKEY", "ENV must have two arguments"},
		{`ENV A="unterminated`, "unexpected end of statement while looking for matching double-quote"},
	} {
		var cfg v1.Config
		err := applyChanges(&cfg, []string{tc.change})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.change, err, tc.want)
		}
	}
}

func TestImageImport_ChangesAndPlatform(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	rootfs := tarBytes(t, map[string]string{"bin/sh": "#!"})
	opts := ImportOptions{Now: now, Platform: "linux/arm/v7", Message: "from a tarball",
		Changes: []string{`CMD ["sh"]`, `ENV LANG=C.UTF-8`, `EXPOSE 8080`}}
	if err := ImageImport(ctx, st, bytes.NewReader(rootfs), "imported:2", opts, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	img, _, err := st.Image(ctx, "imported:2")
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if cf.OS != "linux" || cf.Architecture != "arm" || cf.Variant != "v7" {
		t.Errorf("platform %s/%s/%s, want linux/arm/v7", cf.OS, cf.Architecture, cf.Variant)
	}
	if !reflect.DeepEqual(cf.Config.Cmd, []string{"sh"}) || !reflect.DeepEqual(cf.Config.Env, []string{"LANG=C.UTF-8"}) ||
		len(cf.Config.ExposedPorts) != 1 || cf.History[0].Comment != "from a tarball" {
		t.Errorf("config = %+v, history %+v", cf.Config, cf.History)
	}

	err = ImageImport(ctx, st, bytes.NewReader(rootfs), "imported:3", ImportOptions{Changes: []string{"RUN true"}}, &bytes.Buffer{})
	if err == nil || err.Error() != "RUN is not a valid change command" {
		t.Errorf("RUN change: err = %v", err)
	}
	if _, _, err := st.Image(ctx, "imported:3"); err == nil {
		t.Errorf("a rejected import stored an image")
	}
}
