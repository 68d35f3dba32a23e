package build

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// node is one file of a filesystem: its tar metadata and where its
// content is. Content is never held in memory: it is a file on disk (in
// the build context, or spooled to the build's temporary directory), or
// it still sits in the layers of image.
type node struct {
	typ      byte  // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, …
	mode     int64 // permission and setuid/setgid/sticky bits
	uid, gid int
	size     int64
	link     string
	mtime    time.Time
	devmajor int64
	devminor int64
	file     string   // content on disk, for a regular file; "" when in image
	image    v1.Image // the image whose layers hold the content when file == ""
	path     string   // the file's path in image
}

// tree is a filesystem by clean relative path ("app/bin/x"; the root is
// not stored). It holds metadata only.
type tree map[string]*node

// clone copies the map; nodes are never changed in place once shared.
func (t tree) clone() tree { return maps.Clone(t) }

// isDir reports whether p ("/app", "app") is a directory in t; the root
// always is.
func (t tree) isDir(p string) bool {
	p = rel(p)
	if p == "" {
		return true
	}
	n, ok := t[p]
	return ok && n.typ == tar.TypeDir
}

// under returns the paths strictly below dir, sorted.
func (t tree) under(dir string) []string {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	var out []string
	for p := range t {
		if strings.HasPrefix(p, prefix) && p != dir {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// rel turns an absolute or relative slash path into a tree key.
func rel(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// readTree lists the flattened filesystem of img (whiteouts applied) by
// reading its layers once; the content stays in the layers.
func readTree(img v1.Image) (tree, error) {
	t := tree{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read base image filesystem: %w", err)
		}
		p := rel(h.Name)
		if p == "" {
			continue
		}
		n := &node{typ: h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, size: h.Size,
			link: h.Linkname, mtime: h.ModTime, devmajor: h.Devmajor, devminor: h.Devminor, image: img, path: p}
		if n.typ == tar.TypeRegA {
			n.typ = tar.TypeReg
		}
		if n.typ == tar.TypeLink {
			n.link = rel(h.Linkname)
		}
		t[p] = n
	}
}

// materialize spools to dir the content of every regular file among
// paths that still sits in image layers, one pass over each image.
func materialize(t tree, paths []string, dir string) error {
	want := map[v1.Image]map[string][]string{} // image → path in it → tree keys wanting it
	for _, p := range paths {
		n := t[p]
		if n.typ != tar.TypeReg || n.file != "" {
			continue
		}
		if want[n.image] == nil {
			want[n.image] = map[string][]string{}
		}
		want[n.image][n.path] = append(want[n.image][n.path], p)
	}
	for img, files := range want {
		if err := spoolFrom(img, files, t, dir); err != nil {
			return err
		}
	}
	return nil
}

// spoolFrom reads img's flattened filesystem once and writes the wanted
// files to dir, pointing the wanting nodes at them.
func spoolFrom(img v1.Image, files map[string][]string, t tree, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for len(files) > 0 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read image filesystem: %w", err)
		}
		keys, ok := files[rel(h.Name)]
		if !ok {
			continue
		}
		delete(files, rel(h.Name))
		file, err := spool(dir, tr)
		if err != nil {
			return err
		}
		for _, k := range keys {
			c := *t[k]
			c.file, c.image = file, nil
			t[k] = &c
		}
	}
	if len(files) > 0 {
		return fmt.Errorf("files missing from the image's layers: %s", strings.Join(slices.Sorted(maps.Keys(files)), ", "))
	}
	return nil
}

// layerWriter turns sets of nodes into reproducible layer blobs.
type layerWriter struct {
	dir       string          // where the blobs are spooled
	epoch     *time.Time      // SOURCE_DATE_EPOCH: no mtime is later
	mediaType types.MediaType // of the layers written
}

// write makes a gzip'd tar of the entries of t named by paths, sorted by
// name, with mtimes clamped to the epoch, and returns it as a layer. Its
// content is read from disk while it is written, never held in memory.
func (w layerWriter) write(t tree, paths []string) (v1.Layer, error) {
	if err := materialize(t, paths, w.dir); err != nil {
		return nil, err
	}
	paths = slices.Clone(paths)
	slices.Sort(paths)
	paths = slices.Compact(paths)
	f, err := os.CreateTemp(w.dir, "layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	// A fixed gzip header (no name, no time) keeps the blob's digest a
	// function of the files alone.
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	err = w.entries(tw, t, paths)
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(f.Name(), tarball.WithMediaType(w.mediaType))
}

func (w layerWriter) entries(tw *tar.Writer, t tree, paths []string) error {
	for _, p := range paths {
		n := t[p]
		h := &tar.Header{Typeflag: n.typ, Name: p, Mode: n.mode, Uid: n.uid, Gid: n.gid,
			ModTime: w.clamp(n.mtime), Linkname: n.link, Devmajor: n.devmajor, Devminor: n.devminor}
		switch n.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeReg:
			h.Size = n.size
		}
		if h.Typeflag == tar.TypeReg {
			if err := writeFile(tw, h, n.file); err != nil {
				return fmt.Errorf("layer: %s: %w", p, err)
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return nil
}

// writeFile copies one regular file into the tar, checking that it still
// has the size recorded when it was listed.
func writeFile(tw *tar.Writer, h *tar.Header, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != h.Size {
		return fmt.Errorf("changed during the build (size %d, was %d)", fi.Size(), h.Size)
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// clamp truncates to seconds (sub-second times would need PAX records
// that docker's own layers do not carry) and applies the epoch.
func (w layerWriter) clamp(t time.Time) time.Time {
	t = t.Truncate(time.Second).UTC()
	if w.epoch != nil && (t.After(*w.epoch) || t.IsZero()) {
		return *w.epoch
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Unix(0, 0).UTC()
	}
	return t
}

// joinSlash joins tree keys.
func joinSlash(dir, name string) string {
	if dir == "" {
		return name
	}
	if name == "" {
		return dir
	}
	return dir + "/" + name
}

// fromDisk describes a file of the build context (or an extracted
// archive) as a node.
func fromDisk(p string, fi os.FileInfo) (*node, error) {
	n := &node{mode: int64(fi.Mode().Perm()), mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSetuid != 0 {
		n.mode |= 0o4000
	}
	if fi.Mode()&os.ModeSetgid != 0 {
		n.mode |= 0o2000
	}
	if fi.Mode()&os.ModeSticky != 0 {
		n.mode |= 0o1000
	}
	switch {
	case fi.Mode().IsRegular():
		n.typ, n.size, n.file = tar.TypeReg, fi.Size(), p
	case fi.IsDir():
		n.typ = tar.TypeDir
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		n.typ, n.link = tar.TypeSymlink, filepath.ToSlash(target)
	default:
		return nil, fmt.Errorf("%s: cannot copy a %s", p, fi.Mode().Type())
	}
	return n, nil
}
