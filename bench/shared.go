package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	s3store "github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/throwaway"
)

// The shared-storage section: wharf on PostgreSQL + an S3 gateway
// (versitygw) against the reference registry with its s3 driver on the
// same gateway, each in its own bucket; the gateway driven straight by
// wharf's S3 client is the ceiling of the blob rows.

// The section gateway's buckets: one per server, as two registries would
// have, and one for the ceiling's objects.
const (
	bucketWharf   = "wharf"
	bucketRef     = "reference"
	bucketCeiling = "ceiling"
)

// sharedPart is the part size of every multipart upload in the section:
// wharf's default, which the reference and the ceiling are given too.
const sharedPart = s3store.DefaultPartSize

// sharedStores are one scenario's PostgreSQL cluster and S3 gateway.
type sharedStores struct {
	pg      *throwaway.Postgres
	pgPid   int
	s3      *throwaway.S3
	wharfDB string // wharf's database URL
	core    minio.Core
}

// startShared starts a durable PostgreSQL cluster (fsync and synchronous
// commit on, as in production) and an S3 gateway under dir. A missing
// server fails the scenario with one line that says how to install it.
func (h *harness) startShared(ctx context.Context, dir string) (_ *sharedStores, err error) {
	defer func() {
		if errors.Is(err, throwaway.ErrNotInstalled) {
			err = fmt.Errorf("the shared-storage section needs PostgreSQL 15 and versitygw (`bash test/e2e/setup.sh` installs both): %w", err)
		} else if err != nil {
			err = fmt.Errorf("shared-storage section: %w", err)
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// As root the cluster runs as the postgres user, who must get through
	// the work directory (MkdirTemp made it 0700).
	for _, d := range []string{h.work, dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, err
		}
	}
	st := &sharedStores{}
	if st.pg, err = throwaway.StartPostgres(throwaway.PostgresConfig{Parent: dir, Durable: true}); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			st.stop()
		}
	}()
	if st.pgPid, err = st.pg.Pid(); err != nil {
		return nil, err
	}
	if st.wharfDB, err = st.pg.CreateDatabase(ctx, "wharf"); err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "s3")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	if st.s3, err = throwaway.StartS3(ctx, root); err != nil {
		return nil, err
	}
	for _, b := range []string{bucketWharf, bucketRef, bucketCeiling} {
		if err := st.s3.MakeBucket(b); err != nil {
			return nil, err
		}
	}
	// The ceiling's client is wharf's: minio-go with the options its S3
	// driver sets (internal/blobstore/s3).
	ep, _ := url.Parse(st.s3.Endpoint)
	c, err := minio.New(ep.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(st.s3.AccessKey, st.s3.SecretKey, ""),
		Region:       st.s3.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, err
	}
	st.core = minio.Core{Client: c}
	ok = true
	return st, nil
}

func (st *sharedStores) stop() {
	if st.s3 != nil {
		st.s3.Stop()
	}
	if st.pg != nil {
		_ = st.pg.Stop()
	}
}

// pids are the stores' root processes (PostgreSQL's backends are the
// postmaster's children).
func (st *sharedStores) pids() []int { return []int{st.s3.Pid(), st.pgPid} }

// referenceDriver is the reference's s3 storage driver on the section's
// gateway, with wharf's part size as its chunk size.
func (st *sharedStores) referenceDriver() string {
	return fmt.Sprintf(`  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    forcepathstyle: true
    bucket: %s
    secure: false
    v4auth: true
    chunksize: %d
`, st.s3.AccessKey, st.s3.SecretKey, st.s3.Region, st.s3.Endpoint, bucketRef, sharedPart)
}

// putCeiling writes b to key as wharf's driver writes an upload: one
// multipart upload, parts of sharedPart sent in order, then completed.
func (st *sharedStores) putCeiling(ctx context.Context, key string, b blob) error {
	id, err := st.core.NewMultipartUpload(ctx, bucketCeiling, key, minio.PutObjectOptions{})
	if err != nil {
		return err
	}
	var parts []minio.CompletePart
	for off, n := int64(0), 1; off < b.Size; off, n = off+sharedPart, n+1 {
		size := min(sharedPart, b.Size-off)
		body, opts := s3store.CRCPart(b.section(off, size))
		p, err := st.core.PutObjectPart(ctx, bucketCeiling, key, id, n, body, size, opts)
		if err != nil {
			return err
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
	}
	_, err = st.core.CompleteMultipartUpload(ctx, bucketCeiling, key, id, parts, minio.PutObjectOptions{})
	return err
}

// putCeilingWhole writes b to key as wharf's driver writes a monolithic
// push whose digest is known: one PUT of the whole body, signed with the
// body's sha256 as its payload hash (the gateway checks it while it
// stores), no multipart upload and no completion.
func (st *sharedStores) putCeilingWhole(ctx context.Context, key string, b blob, sha256Hex string) error {
	_, err := st.core.PutObject(ctx, bucketCeiling, key, b.reader(), b.Size, "", sha256Hex,
		minio.PutObjectOptions{DisableContentSha256: true})
	return err
}

// getCeiling reads key whole in buf-sized reads and returns its length.
func (st *sharedStores) getCeiling(ctx context.Context, key string, buf []byte) (int64, error) {
	obj, _, _, err := st.core.GetObject(ctx, bucketCeiling, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	return io.CopyBuffer(io.Discard, onlyReader{obj}, buf)
}

// onlyReader hides WriteTo and ReadFrom so that CopyBuffer uses buf.
type onlyReader struct{ io.Reader }

// treeCPU is the CPU time used so far by the processes roots and their
// children, including children that have exited (PostgreSQL's backends).
func treeCPU(roots []int) time.Duration {
	if len(roots) == 0 {
		return 0
	}
	isRoot := map[int]bool{}
	for _, p := range roots {
		isRoot[p] = true
	}
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the parenthesised command name: state, ppid (index 1),
		// …, utime 11, stime 12, cutime 13, cstime 14.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if !isRoot[pid] && !isRoot[ppid] {
			continue
		}
		for _, k := range []int{11, 12} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
		if isRoot[pid] {
			for _, k := range []int{13, 14} {
				v, _ := strconv.ParseInt(f[k], 10, 64)
				ticks += v
			}
		}
	}
	const clkTck = 100
	return time.Duration(ticks) * time.Second / clkTck
}
