package s3

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

var _ blobstore.UploadSweeper = (*Store)(nil)

// multipartName prefixes the UploadObject.Name of an unfinished multipart
// upload (the rest is its S3 upload id); object names never contain ':'.
const multipartName = "multipart:"

// WalkUploadObjects lists the objects under uploads/ and the bucket's
// unfinished multipart uploads there. It is for the background janitor
// only: listing is slow on a large bucket and not consistent on every
// store, which is why nothing on a request path lists (an upload's
// objects are found from its recorded state).
func (s *Store) WalkUploadObjects(ctx context.Context, fn func(o blobstore.UploadObject) error) error {
	prefix := s.cfg.Prefix + "uploads/"
	lctx, cancel := context.WithCancel(ctx)
	objects := s.client.ListObjects(lctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	err := walkListing(objects, cancel, func(info minio.ObjectInfo) error {
		if info.Err != nil {
			return ctxOr(ctx, fmt.Errorf("blobstore/s3: list upload objects: %w", info.Err))
		}
		id, name, ok := s.splitUploadKey(info.Key)
		if !ok || strings.HasPrefix(name, multipartName) {
			return nil // not an upload's object (a directory marker, say)
		}
		return fn(blobstore.UploadObject{Upload: id, Name: name, Written: info.LastModified})
	})
	if err != nil {
		return err
	}
	err = s.walkMultipart(ctx, prefix, func(info minio.ObjectMultipartInfo) error {
		id, name, ok := s.splitUploadKey(info.Key)
		if !ok || name != "data" {
			return nil
		}
		return fn(blobstore.UploadObject{Upload: id, Name: multipartName + info.UploadID, Written: info.Initiated})
	})
	if err != nil {
		return err
	}
	// CreateBlob's multipart uploads, at blob keys: no session records
	// them, so each is reported as an upload of its own, which no session
	// has, and one older than the janitor's cutoff was given up.
	return s.walkMultipart(ctx, s.cfg.Prefix+"blobs/", func(info minio.ObjectMultipartInfo) error {
		d, ok := s.splitBlobKey(info.Key)
		if !ok {
			return nil
		}
		return fn(blobstore.UploadObject{Upload: blobUploadID(d), Name: multipartName + info.UploadID, Written: info.Initiated})
	})
}

// walkMultipart calls fn for each unfinished multipart upload under prefix.
func (s *Store) walkMultipart(ctx context.Context, prefix string, fn func(minio.ObjectMultipartInfo) error) error {
	lctx, cancel := context.WithCancel(ctx)
	mpus := s.client.ListIncompleteUploads(lctx, s.cfg.Bucket, prefix, true)
	return walkListing(mpus, cancel, func(info minio.ObjectMultipartInfo) error {
		if info.Err != nil {
			return ctxOr(ctx, fmt.Errorf("blobstore/s3: list multipart uploads: %w", info.Err))
		}
		if info.UploadID == "" {
			return nil
		}
		return fn(info)
	})
}

// blobUploadPrefix starts the UploadObject.Upload of a multipart upload
// at a blob key; session ids are UUIDs, so none starts so.
const blobUploadPrefix = "blob-"

// blobUploadID names, as an upload id, the multipart uploads of blob d.
func blobUploadID(d digest.Digest) string {
	return blobUploadPrefix + string(d.Algorithm()) + "-" + d.Encoded()
}

// splitBlobKey returns the digest of the blob key blobs/<alg>/<xx>/<hex>
// under the prefix.
func (s *Store) splitBlobKey(key string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(key, s.cfg.Prefix+"blobs/")
	if !ok {
		return "", false
	}
	f := strings.Split(rest, "/")
	if len(f) != 3 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(f[0]), f[2])
	if validDigest(d) != nil || f[1] != f[2][:2] {
		return "", false
	}
	return d, true
}

// walkListing calls fn for each item of a minio-go listing; on an error it
// cancels the listing and drains it, so that its goroutine ends.
func walkListing[T any](items <-chan T, cancel context.CancelFunc, fn func(T) error) error {
	defer func() {
		cancel()
		for range items {
		}
	}()
	for item := range items {
		if err := fn(item); err != nil {
			return err
		}
	}
	return nil
}

// splitUploadKey splits uploads/<id>/<name> under the prefix.
func (s *Store) splitUploadKey(key string) (id, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, s.cfg.Prefix+"uploads/")
	if !ok {
		return "", "", false
	}
	id, name, ok = strings.Cut(rest, "/")
	if !ok || validID(id) != nil || name == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return id, name, true
}

// Owns reports whether the recorded state names o: its multipart upload
// (until assembled), the data object (once assembled), its tail, or a
// replaced tail that its next write removes. A state that cannot be read
// owns everything, so that a janitor never removes what it cannot judge.
func (s *Store) Owns(o blobstore.UploadObject, state blobstore.State) bool {
	st, err := decodeState(o.Upload, state)
	if err != nil {
		return true
	}
	if mpu, ok := strings.CutPrefix(o.Name, multipartName); ok {
		return mpu == st.MPU && !st.Assembled
	}
	switch {
	case o.Name == "data":
		return st.Assembled
	case st.Tail > 0 && o.Name == tailName(&st):
		return true
	case slices.Contains(st.OldTailNames, o.Name):
		return true
	}
	return slices.ContainsFunc(st.OldTails, func(end int64) bool { return o.Name == "tail-"+strconv.FormatInt(end, 10) })
}

// RemoveUploadObject deletes o, or aborts it if it is a multipart upload.
func (s *Store) RemoveUploadObject(ctx context.Context, o blobstore.UploadObject) error {
	if err := validID(o.Upload); err != nil {
		return err
	}
	if o.Name == "" || strings.Contains(o.Name, "/") {
		return fmt.Errorf("blobstore/s3: invalid upload object name %q", o.Name)
	}
	var err error
	mpu, isMPU := strings.CutPrefix(o.Name, multipartName)
	if rest, ok := strings.CutPrefix(o.Upload, blobUploadPrefix); ok {
		// Only ever an abort: a blob's committed object is not the
		// janitor's to remove.
		alg, hex, _ := strings.Cut(rest, "-")
		key, kerr := s.blobKey(digest.NewDigestFromEncoded(digest.Algorithm(alg), hex))
		if kerr != nil || !isMPU {
			return fmt.Errorf("blobstore/s3: invalid upload object %q of %q", o.Name, o.Upload)
		}
		err = s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, key, mpu)
	} else if isMPU {
		err = s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, s.dataKey(o.Upload), mpu)
	} else {
		err = s.client.RemoveObject(ctx, s.cfg.Bucket, s.uploadKey(o.Upload, o.Name), minio.RemoveObjectOptions{})
	}
	if err != nil && !errors.Is(notFound(err), blobstore.ErrNotFound) {
		return ctxOr(ctx, fmt.Errorf("blobstore/s3: remove %s of upload %s: %w", o.Name, o.Upload, err))
	}
	return nil
}
