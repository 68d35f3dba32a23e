package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// loadContext lists the build context directory, less what the
// .dockerignore file excludes (docker's pattern rules, `!` exceptions
// included). Files keep their mode and mtime; their owner is root, as in
// docker, whoever owns them on disk.
func loadContext(dir, ignoreFile string) (tree, error) {
	var patterns []string
	if f, err := os.Open(ignoreFile); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ignoreFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ignoreFile, err)
	}
	t := tree{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(dir, p)
		if err != nil || r == "." {
			return err
		}
		r = filepath.ToSlash(r)
		excluded, err := pm.MatchesOrParentMatches(r)
		if err != nil {
			return err
		}
		if excluded {
			// An exception (!pattern) may bring back something below.
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n, err := fromDisk(p, fi)
		if err != nil {
			return err
		}
		t[r] = n
		// A directory excluded as a whole still holds what an exception
		// brought back.
		for parent := path.Dir(r); parent != "."; parent = path.Dir(parent) {
			if _, ok := t[parent]; ok {
				break
			}
			pfi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(parent)))
			if err != nil {
				return err
			}
			if t[parent], err = fromDisk(filepath.Join(dir, parent), pfi); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return t, nil
}

// owner is a numeric --chown.
type owner struct{ uid, gid int }

// copyOp is one COPY or ADD, its words expanded.
type copyOp struct {
	in      instruction
	srcs    []string
	dest    string // absolute, a trailing / kept
	src     tree
	context bool // src is the build context
	chown   *owner
	chmod   *int64
	add     bool
	now     time.Time
	tmp     string // for extracted archives
}

// apply copies into dst with docker's path rules and returns the paths
// the layer must hold: what was copied and its parent directories.
func (op copyOp) apply(dst tree) ([]string, error) {
	destDir := strings.HasSuffix(op.dest, "/") || strings.HasSuffix(op.dest, "/.") || dst.isDir(op.dest)
	destKey := rel(op.dest)
	var matched []string
	for _, s := range op.srcs {
		if op.add && isURL(s) {
			return nil, op.in.errorf("%s is a URL: wharf image build downloads nothing; fetch the file into the build context and COPY it", s)
		}
		if isURL(s) {
			return nil, op.in.errorf("source can't be a URL for COPY")
		}
		m := match(op.src, s)
		if len(m) == 0 {
			where := "the build context"
			if !op.context {
				where = "the --from image or stage"
			}
			return nil, op.in.errorf("%s: not found in %s (or excluded by .dockerignore)", s, where)
		}
		matched = append(matched, m...)
	}
	if len(matched) > 1 && !strings.HasSuffix(op.dest, "/") {
		return nil, op.in.errorf("When using %s with more than one source file, the destination must be a directory and end with a /", strings.ToUpper(op.in.cmd))
	}
	var changed []string
	put := func(target string, n *node) error {
		if old, ok := dst[target]; ok && old.typ == tar.TypeDir && n.typ != tar.TypeDir {
			return op.in.errorf("cannot overwrite directory /%s with a non-directory", target)
		}
		c := *n
		if c.typ == tar.TypeLink {
			// A copy cannot keep a hard link: it gets the linked file.
			target, ok := op.src[n.link]
			if !ok || target.typ != tar.TypeReg {
				return op.in.errorf("hard link to /%s: the linked file is missing", n.link)
			}
			c.typ, c.size, c.link, c.file, c.image, c.path = tar.TypeReg, target.size, "", target.file, target.image, target.path
		}
		if op.chown != nil {
			c.uid, c.gid = op.chown.uid, op.chown.gid
		}
		if op.chmod != nil && (c.typ == tar.TypeReg || c.typ == tar.TypeDir) {
			c.mode = *op.chmod
		}
		dst[target] = &c
		changed = append(changed, target)
		return nil
	}
	for _, m := range matched {
		n := op.src[m]
		switch {
		case m == "" || n.typ == tar.TypeDir:
			if err := op.mkdir(dst, destKey, &changed); err != nil {
				return nil, err
			}
			for _, e := range op.src.under(m) {
				target := joinSlash(destKey, strings.TrimPrefix(strings.TrimPrefix(e, m), "/"))
				if err := put(target, op.src[e]); err != nil {
					return nil, err
				}
			}
		case op.add && op.context && n.typ == tar.TypeReg:
			isTar, err := op.extract(dst, n.file, destKey, &changed)
			if err != nil {
				return nil, err
			}
			if isTar {
				continue
			}
			fallthrough
		default:
			target := destKey
			if destDir {
				target = joinSlash(destKey, path.Base(m))
			}
			if err := put(target, n); err != nil {
				return nil, err
			}
		}
	}
	return op.withParents(dst, changed)
}

// mkdir makes dir (and its parents) unless it is one.
func (op copyOp) mkdir(dst tree, dir string, changed *[]string) error {
	if dir == "" || dst.isDir(dir) {
		return nil
	}
	if _, ok := dst[dir]; ok {
		return op.in.errorf("cannot copy into /%s: it is not a directory", dir)
	}
	dst[dir] = op.newDir()
	*changed = append(*changed, dir)
	return nil
}

func (op copyOp) newDir() *node {
	n := &node{typ: tar.TypeDir, mode: 0o755, mtime: op.now}
	if op.chown != nil {
		n.uid, n.gid = op.chown.uid, op.chown.gid
	}
	return n
}

// withParents adds the parent directories of changed paths, creating the
// missing ones: a layer holds every directory on the way to its files,
// as docker's layer diffs do.
func (op copyOp) withParents(dst tree, changed []string) ([]string, error) {
	out := slices.Clone(changed)
	seen := map[string]bool{}
	for _, p := range changed {
		for parent := path.Dir(p); parent != "." && !seen[parent]; parent = path.Dir(parent) {
			seen[parent] = true
			n, ok := dst[parent]
			switch {
			case !ok:
				dst[parent] = op.newDir()
			case n.typ != tar.TypeDir:
				return nil, op.in.errorf("cannot copy to /%s: /%s is not a directory", p, parent)
			}
			out = append(out, parent)
		}
	}
	return out, nil
}

// match resolves a COPY source in t: an exact path, or a pattern with
// * ? [ matched per path element (filepath.Match, as docker does).
func match(t tree, src string) []string {
	p := rel(src)
	if !strings.ContainsAny(p, "*?[") {
		if _, ok := t[p]; ok || p == "" {
			return []string{p}
		}
		return nil
	}
	depth := strings.Count(p, "/")
	var out []string
	for k := range t {
		if strings.Count(k, "/") != depth {
			continue
		}
		if ok, _ := path.Match(p, k); ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "git@")
}

// extract unpacks a local tar archive (plain, gzip or bzip2) into dir, as
// ADD does; it reports false, having done nothing, for any other file.
// Entries keep the archive's owners and modes unless --chown/--chmod.
func (op copyOp) extract(dst tree, file, dir string, changed *[]string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, nil
		}
		r = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}), bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return false, op.in.errorf("%s: xz and zstd archives are not supported; use a plain, gzip or bzip2 tar", filepath.Base(file))
	}
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil {
		return false, nil // not a tar: ADD copies it as a file
	}
	if err := op.mkdir(dst, dir, changed); err != nil {
		return true, err
	}
	for ; err == nil; h, err = tr.Next() {
		p := joinSlash(dir, rel(h.Name))
		if p == dir {
			continue
		}
		n := &node{typ: h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, link: h.Linkname, mtime: h.ModTime,
			devmajor: h.Devmajor, devminor: h.Devminor}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			n.typ, n.size = tar.TypeReg, h.Size
			if n.file, err = spool(op.tmp, tr); err != nil {
				return true, op.in.errorf("extract %s: %v", filepath.Base(file), err)
			}
		case tar.TypeLink:
			target, ok := dst[joinSlash(dir, rel(h.Linkname))]
			if !ok || target.typ != tar.TypeReg {
				return true, op.in.errorf("extract %s: hard link %s to a file not in the archive", filepath.Base(file), h.Name)
			}
			n.typ, n.size, n.file, n.link = tar.TypeReg, target.size, target.file, ""
		case tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		default:
			continue // pax headers and the like carry no file
		}
		if op.chown != nil {
			n.uid, n.gid = op.chown.uid, op.chown.gid
		}
		if op.chmod != nil && (n.typ == tar.TypeReg || n.typ == tar.TypeDir) {
			n.mode = *op.chmod
		}
		dst[p] = n
		*changed = append(*changed, p)
	}
	if err != io.EOF {
		return true, op.in.errorf("extract %s: %v", filepath.Base(file), err)
	}
	return true, nil
}

// spool copies r to a new file in dir and returns its name.
func spool(dir string, r io.Reader) (string, error) {
	f, err := os.CreateTemp(dir, "file-")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}
