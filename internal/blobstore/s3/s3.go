// Package s3 is the blobstore driver for shared deployments: blobs and
// upload bytes in any S3-compatible object store, so that any number of
// stateless wharf replicas can serve them.
//
// Layout under the configured prefix:
//
//	blobs/<algorithm>/<first two hex chars>/<hex>   committed blobs (and, unseen
//	                                                until completed, the multipart
//	                                                upload of a blob written there
//	                                                directly: CreateBlob)
//	uploads/<id>/data                               an upload's multipart object
//	uploads/<id>/tail-<end>-<writer>                an upload's bytes past its last whole part
//	.probe/<random>                                 the start-up permission check
//
// Unlike the filesystem driver, an upload's progress (the multipart upload
// id, its parts and the tail object) is not found in the bucket: the driver
// hands it to the caller as an opaque state after every write, and the
// caller keeps it with the session in the database, in the same write as
// the session's offset. Nothing on a request path lists the bucket.
package s3

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

// hexLen lists the digest algorithms the store accepts (naming the crypto
// packages also links them in, which go-digest needs to validate them).
var hexLen = map[digest.Algorithm]int{
	digest.SHA256: sha256.Size * 2,
	digest.SHA512: sha512.Size * 2,
}

var (
	_ blobstore.Store      = (*Store)(nil)
	_ blobstore.Redirector = (*Store)(nil)
)

// Store keeps blobs in an S3 bucket.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
	log    *slog.Logger
	parts  partPool
	// signedParts sends parts with signed payloads instead of a CRC32C
	// trailer, for a store that refused the trailer (partcrc.go).
	signedParts bool
	// public signs redirect URLs for cfg.PublicEndpoint; nil when
	// redirects are off. It never sends a request.
	public *minio.Client
}

// New connects to the bucket and checks, once, everything wharf will ask of
// it: that the endpoint answers, the credentials are accepted, the bucket
// exists, and objects can be written, read and deleted and multipart
// uploads run through (which also says how parts can be sent). Each failure is one line that says what to fix.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	s, err := open(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func open(cfg Config, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds := cfg.credentials()
	client, err := newClient(cfg, cfg.Endpoint, creds)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:    cfg,
		client: client,
		core:   minio.Core{Client: client},
		log:    log,
		parts:  newPartPool(cfg.partSize()),
	}
	if cfg.RedirectExpiry > 0 {
		ep := cfg.PublicEndpoint
		if ep == "" {
			ep = cfg.Endpoint
		}
		if s.public, err = newClient(cfg, ep, creds); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newClient is a client of cfg's bucket at endpoint. With the region set,
// minio-go never asks the server for it, so presigning stays offline.
func newClient(cfg Config, endpoint string, creds *credentials.Credentials) (*minio.Client, error) {
	ep, _ := url.Parse(endpoint)
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(ep.Host, &minio.Options{
		Creds:        creds,
		Secure:       ep.Scheme == "https",
		Region:       cfg.region(),
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return client, nil
}

// check is New's start-up probe.
func (s *Store) check(ctx context.Context) error {
	where := fmt.Sprintf("s3 bucket %q at %s", s.cfg.Bucket, s.cfg.Endpoint)
	// A one-key listing, not HEAD: a HEAD's error has no body, so bad
	// credentials and a missing bucket would look alike (and minio-go
	// answers GetBucketLocation from the configured region unasked).
	if _, err := s.core.ListObjectsV2(s.cfg.Bucket, s.cfg.Prefix+".probe/", "", "", "", 1); err != nil {
		return fmt.Errorf("%s: %s", where, explain(err))
	}
	key := s.cfg.Prefix + ".probe/" + rand.Text()
	if _, err := retryDirRace(ctx, func() (minio.UploadInfo, error) {
		return s.client.PutObject(ctx, s.cfg.Bucket, key, strings.NewReader("wharf"), 5, minio.PutObjectOptions{})
	}); err != nil {
		return fmt.Errorf("%s: cannot write objects (s3:PutObject): %s", where, explain(err))
	}
	defer func() {
		_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.cfg.Bucket, key, minio.RemoveObjectOptions{})
	}()
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err == nil {
		var b []byte
		b, err = io.ReadAll(obj)
		obj.Close()
		if err == nil && string(b) != "wharf" {
			err = fmt.Errorf("read back %q, wrote %q", b, "wharf")
		}
	}
	if err != nil {
		return fmt.Errorf("%s: cannot read objects (s3:GetObject): %s", where, explain(err))
	}
	if err := s.probeMultipart(ctx, key+"-multipart"); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("%s: cannot delete objects (s3:DeleteObject): %s", where, explain(err))
	}
	return nil
}

// explain turns an S3 or network error into what an operator should fix.
func explain(err error) string {
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, net.ErrClosed) {
		return "cannot reach the endpoint (" + err.Error() + "); check the endpoint URL and that the server runs"
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "XAdminUserNotFound":
		return "the access key is not known to the server; check AWS_ACCESS_KEY_ID"
	case "SignatureDoesNotMatch":
		return "the secret key does not match the access key; check AWS_SECRET_ACCESS_KEY"
	case "AccessDenied":
		return "access denied; the credentials lack this permission on the bucket"
	case "NoSuchBucket":
		return "the bucket does not exist; create it first"
	case "AuthorizationHeaderMalformed":
		return "the region is wrong for this bucket (" + resp.Message + "); set region="
	}
	if resp.Code != "" {
		return resp.Code + ": " + resp.Message
	}
	return err.Error()
}

func (s *Store) blobKey(d digest.Digest) (string, error) {
	if err := validDigest(d); err != nil {
		return "", err
	}
	h := d.Encoded()
	return s.cfg.Prefix + "blobs/" + string(d.Algorithm()) + "/" + h[:2] + "/" + h, nil
}

func validDigest(d digest.Digest) error {
	if !strings.Contains(string(d), ":") {
		// go-digest's Algorithm panics without the separator.
		return fmt.Errorf("blobstore/s3: invalid digest %q", d)
	}
	n, ok := hexLen[d.Algorithm()]
	if !ok {
		return fmt.Errorf("blobstore/s3: unsupported digest algorithm in %q", d)
	}
	if err := d.Validate(); err != nil || len(d.Encoded()) != n {
		return fmt.Errorf("blobstore/s3: invalid digest %q", d)
	}
	return nil
}

// notFound maps S3's "no such key" to blobstore.ErrNotFound.
func notFound(err error) error {
	if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" || code == "NotFound" || code == "NoSuchUpload" {
		return fmt.Errorf("%w: %v", blobstore.ErrNotFound, err)
	}
	return err
}

// Stat returns the size of a committed blob, or blobstore.ErrNotFound.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	key, err := s.blobKey(d)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return 0, ctxOr(ctx, notFound(err))
	}
	return info.Size, nil
}

// Open returns a reader of a committed blob and its size. Reads and seeks
// become ranged GETs, so an HTTP Range request fetches only its range.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error) {
	size, err := s.Stat(ctx, d)
	if err != nil {
		return nil, 0, err
	}
	key, _ := s.blobKey(d)
	return &blobReader{core: s.core, ctx: ctx, bucket: s.cfg.Bucket, key: key, size: size}, size, nil
}

// RedirectURL returns a presigned GET URL of blob d, signed for the public
// endpoint and valid for the configured expiry, or "" when redirects are
// off. Signing needs no request, so it neither checks that d exists nor
// costs a round trip: the caller has found d linked in the metadata. The
// URL signs no headers, so a client's Range passes through to the store.
func (s *Store) RedirectURL(ctx context.Context, d digest.Digest) (string, error) {
	if s.public == nil {
		return "", nil
	}
	key, err := s.blobKey(d)
	if err != nil {
		return "", err
	}
	u, err := s.public.PresignedGetObject(ctx, s.cfg.Bucket, key, s.cfg.RedirectExpiry, nil)
	if err != nil {
		return "", fmt.Errorf("s3: presign %s: %w", d, err)
	}
	return u.String(), nil
}

// Delete removes a committed blob, or returns blobstore.ErrNotFound.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if _, err := s.Stat(ctx, d); err != nil {
		return err
	}
	key, _ := s.blobKey(d)
	return ctxOr(ctx, s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}))
}

// Ping reports whether the bucket answers; New made the full check.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return ctxOr(ctx, fmt.Errorf("s3 bucket %q: %s", s.cfg.Bucket, explain(err)))
	}
	if !ok {
		return fmt.Errorf("s3 bucket %q is gone", s.cfg.Bucket)
	}
	return nil
}

// ctxOr returns the context's error when it ended, so that callers see
// context.Canceled rather than a transport error about it.
func ctxOr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
