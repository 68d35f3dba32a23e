package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestCopy_PathRules(t *testing.T) {
	ctx := map[string]string{
		"a.txt": "A", "b.txt": "B", "c.md": "C",
		"dir/x": "X", "dir/sub/y": "Y", "dir/empty/": "",
	}
	for name, tc := range map[string]struct {
		copy string
		want []string
	}{
		"file to a new name":         {"COPY a.txt /app/renamed", []string{"app/", "app/renamed"}},
		"file into a dir (slash)":    {"COPY a.txt /app/", []string{"app/", "app/a.txt"}},
		"file into an existing dir":  {"COPY a.txt /etc", []string{"etc/", "etc/a.txt"}},
		"a dir copies its contents":  {"COPY dir /app", []string{"app/", "app/empty/", "app/sub/", "app/sub/y", "app/x"}},
		"wildcard":                   {"COPY *.txt /app/", []string{"app/", "app/a.txt", "app/b.txt"}},
		"wildcard in a dir":          {"COPY dir/s* /d/", []string{"d/", "d/y"}},
		"several sources":            {"COPY a.txt c.md /app/", []string{"app/", "app/a.txt", "app/c.md"}},
		"relative to WORKDIR":        {"WORKDIR /w\nCOPY a.txt rel/", []string{"w/", "w/rel/", "w/rel/a.txt"}},
		"dot is the WORKDIR":         {"WORKDIR /w\nCOPY a.txt .", []string{"w/", "w/a.txt"}},
		"paths cannot leave context": {"COPY ../../a.txt /", []string{"a.txt"}},
		"deep new parents":           {"COPY a.txt /x/y/z/", []string{"x/", "x/y/", "x/y/z/", "x/y/z/a.txt"}},
	} {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{"Dockerfile": "FROM base\n" + tc.copy + "\n"}
			for k, v := range ctx {
				files[k] = v
			}
			base := baseImage(t, v1.Config{}, layerOf(t, file{name: "etc/", typ: tar.TypeDir, mode: 0o755}))
			img := mustBuild(t, writeContext(t, files), images{"base": base})
			if got := names(layerFiles(t, img, -1)); !slices.Equal(got, tc.want) {
				t.Errorf("layer holds %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCopy_OwnersAndModes(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY run.sh /bin/\nCOPY --chown=1000 --chmod=0640 conf /etc/app/\nCOPY --chown=10:20 run.sh /opt/tool/\n",
		"run.sh":     "#!/bin/sh\n", "conf/a.ini": "a=1",
	})
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := mustBuild(t, dir, nil)
	for _, tc := range []struct {
		layer      int
		name       string
		mode       int64
		uid, gid   int
		wantInBody string
	}{
		{0, "bin/", 0o755, 0, 0, ""},
		{0, "bin/run.sh", 0o755, 0, 0, "#!/bin/sh"},
		{1, "etc/", 0o755, 1000, 1000, ""}, // directories the copy makes get the owner
		{1, "etc/app/", 0o755, 1000, 1000, ""},
		{1, "etc/app/a.ini", 0o640, 1000, 1000, "a=1"},
		{2, "opt/tool/run.sh", 0o755, 10, 20, ""},
	} {
		e := entry(t, layerFiles(t, img, tc.layer), tc.name)
		if e.mode != tc.mode || e.uid != tc.uid || e.gid != tc.gid || !strings.Contains(e.body, tc.wantInBody) {
			t.Errorf("%s = %v, want mode %o owner %d:%d", tc.name, e, tc.mode, tc.uid, tc.gid)
		}
	}
}

func TestCopy_Dockerignore(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY . /src/\n",
		".dockerignore": "# build output\n*.log\n!keep.log\nsecret\n**/*.tmp\nDockerfile\n" +
			"vendor/\n!vendor/keep/\n",
		"main.go": "package main", "debug.log": "x", "keep.log": "kept", "secret/key": "k",
		"pkg/a.tmp": "t", "pkg/a.go": "package pkg", "vendor/drop/x": "x", "vendor/keep/y": "y",
	})
	got := names(layerFiles(t, mustBuild(t, dir, nil), 0))
	want := []string{"src/", "src/.dockerignore", "src/keep.log", "src/main.go", "src/pkg/", "src/pkg/a.go",
		"src/vendor/", "src/vendor/keep/", "src/vendor/keep/y"}
	if !slices.Equal(got, want) {
		t.Errorf("copied %v\nwant   %v", got, want)
	}
	// An excluded file cannot be named either.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY debug.log /\n"), 0o644)
	if _, err := run(t, dir, nil); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Errorf("COPY of an excluded file: %v", err)
	}
}

func TestCopy_FromStageAndImage(t *testing.T) {
	tools := baseImage(t, v1.Config{},
		layerOf(t, file{name: "usr/", typ: tar.TypeDir, mode: 0o755}, file{name: "usr/bin/", typ: tar.TypeDir, mode: 0o755},
			file{name: "usr/bin/tool", mode: 0o755, uid: 5, gid: 6, body: "old tool"}),
		layerOf(t, file{name: "usr/bin/tool", mode: 0o755, uid: 5, gid: 6, body: "new tool"},
			file{name: "usr/bin/alias", typ: tar.TypeLink, mode: 0o755, uid: 5, gid: 6, link: "usr/bin/tool"}))
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM scratch AS build
COPY app.txt /out/app.txt
FROM tools:1 AS tools
FROM scratch
COPY --from=build /out/ /app/
COPY --from=0 /out/app.txt /second.txt
COPY --from=tools /usr/bin/tool /usr/bin/alias /bin/
COPY --from=tools:1 --chown=7:8 /usr/bin/tool /direct
`,
		"app.txt": "built",
	})
	img := mustBuild(t, dir, images{"tools:1": tools})
	check := func(layer int, name, body string, uid int) {
		t.Helper()
		e := entry(t, layerFiles(t, img, layer), name)
		if e.body != body || e.uid != uid || e.typ != tar.TypeReg {
			t.Errorf("%s = %v, want %q owned by %d", name, e, body, uid)
		}
	}
	check(0, "app/app.txt", "built", 0)
	check(1, "second.txt", "built", 0)
	check(2, "bin/tool", "new tool", 5)  // the upper layer wins; ownership kept across stages
	check(2, "bin/alias", "new tool", 5) // a hard link is copied as the file
	check(3, "direct", "new tool", 7)
	m, _ := img.Manifest()
	if len(m.Annotations) != 0 {
		t.Errorf("final stage FROM scratch has base annotations %v", m.Annotations)
	}
}

func TestAdd_LocalTarExtracts(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []file{{name: "pkg/", typ: tar.TypeDir, mode: 0o700}, {name: "pkg/bin", mode: 0o751, uid: 33, body: "elf"},
		{name: "pkg/link", typ: tar.TypeSymlink, link: "bin"}} {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Uid: f.uid, Linkname: f.link, Size: int64(len(f.body)), ModTime: time.Unix(1e9, 0)}
		if f.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		tw.WriteHeader(h)
		tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nADD rootfs.tar.gz /opt/\nADD plain.txt /opt/plain.txt\nCOPY rootfs.tar.gz /copied/\n",
		"plain.txt":  "not an archive",
	})
	os.WriteFile(filepath.Join(dir, "rootfs.tar.gz"), buf.Bytes(), 0o644)
	img := mustBuild(t, dir, nil)
	got := layerFiles(t, img, 0)
	if n := names(got); !slices.Equal(n, []string{"opt/", "opt/pkg/", "opt/pkg/bin", "opt/pkg/link"}) {
		t.Fatalf("ADD of a tar gave %v", n)
	}
	if e := entry(t, got, "opt/pkg/bin"); e.body != "elf" || e.mode != 0o751 || e.uid != 33 {
		t.Errorf("extracted file %v", e)
	}
	if e := entry(t, got, "opt/pkg/link"); e.typ != tar.TypeSymlink || e.link != "bin" {
		t.Errorf("extracted link %v", e)
	}
	if e := entry(t, layerFiles(t, img, 1), "opt/plain.txt"); e.body != "not an archive" {
		t.Errorf("ADD of a plain file: %v", e)
	}
	if e := entry(t, layerFiles(t, img, 2), "copied/rootfs.tar.gz"); len(e.body) != buf.Len() {
		t.Errorf("COPY extracted the archive: %v", e)
	}
}
