package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/minio/minio-go/v7"
)

// crcTrailer is the S3 header of a CRC32C checksum, sent as a trailer,
// in its canonical form (the trailer is an http.Header, built here as the
// plain map it is: the store package speaks no HTTP itself).
const crcTrailer = "X-Amz-Checksum-Crc32c"

// trailerOf is the trailer holding sum.
func trailerOf(sum []byte) map[string][]string {
	return map[string][]string{crcTrailer: {base64.StdEncoding.EncodeToString(sum)}}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Parts of multipart uploads go up as unsigned payloads whose CRC32C
// follows them as a trailer, which the store checks before it keeps the
// part.
//
// Why not the signed payload minio-go sends over plain HTTP: the store
// would check a sha256 of every byte, and we would compute it, on the
// busiest path of a push (a fifth of a chunked push's time on versitygw);
// over HTTPS minio-go sends parts unsigned anyway. What the signature
// added over the CRC is protection from someone able to rewrite the
// traffic to the store, who could as well rewrite what it answers to a
// pull; blobs are content-addressed, and clients check the digest of
// what they pull. The CRC catches what the network or a proxy corrupts.
//
// A store that refuses such parts (an older S3-compatible server without
// trailers, or one that wants the checksum declared when the upload
// starts) is found by New's probe, and then gets the signed payloads
// (Store.signedParts).

// CRCPart returns the body and options for one PUT of a part read from
// body, whose sum is known only at its end. A body that cannot seek is
// sent once: minio-go does not retry it.
//
// Exported for the benchmark's ceiling, which sends parts as wharf does.
func CRCPart(body io.Reader) (io.Reader, minio.PutObjectPartOptions) {
	h := crc32.New(castagnoli)
	// minio-go announces the trailer from the header's value before the
	// body is read; the reader sets the real one at the end.
	trailer := trailerOf(h.Sum(nil))
	r := &crcReader{r: body, h: h, trailer: trailer}
	return r, minio.PutObjectPartOptions{DisableContentSha256: true, Trailer: trailer}
}

// crcBuffered is CRCPart for a part held whole in b: the trailer is
// summed first, and the body can seek, so minio-go retries a PUT that
// failed on the way.
func crcBuffered(b []byte) (io.Reader, minio.PutObjectPartOptions) {
	trailer := trailerOf(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli)))
	return bytes.NewReader(b), minio.PutObjectPartOptions{DisableContentSha256: true, Trailer: trailer}
}

// partBody returns the body and options of a part read from body.
func (s *Store) partBody(body io.Reader) (io.Reader, minio.PutObjectPartOptions) {
	if s.signedParts {
		return body, minio.PutObjectPartOptions{}
	}
	return CRCPart(body)
}

// bufferedPart returns the body and options of a part held whole in b.
func (s *Store) bufferedPart(b []byte) (io.Reader, minio.PutObjectPartOptions) {
	if s.signedParts {
		return bytes.NewReader(b), minio.PutObjectPartOptions{}
	}
	return crcBuffered(b)
}

// crcReader sums what is read through it and, at the end of the body,
// writes the sum into the trailer that follows the body.
type crcReader struct {
	r       io.Reader
	h       hash.Hash32
	trailer map[string][]string
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		c.trailer[crcTrailer] = []string{base64.StdEncoding.EncodeToString(c.h.Sum(nil))}
	}
	return n, err
}

// partRefused is a part PUT or completion that the store refused in
// New's probe; what says which, as the operator's message starts.
type partRefused struct {
	what string
	err  error
}

func (p *partRefused) Error() string { return p.what + ": " + explain(p.err) }
func (p *partRefused) Unwrap() error { return p.err }

// probeMultipart runs a multipart upload at key through: started, one
// small part, completed, deleted. Parts go with a CRC32C trailer unless
// the store refuses them for a reason other than permission; then with
// signed payloads, which the store must take.
func (s *Store) probeMultipart(ctx context.Context, key string) error {
	err := s.multipartRoundTrip(ctx, key)
	var refused *partRefused
	if errors.As(err, &refused) && minio.ToErrorResponse(refused.err).Code != "AccessDenied" {
		s.signedParts = true
		s.log.WarnContext(ctx, "the S3 store refused a part sent with a CRC32C trailer; parts go with signed payloads, which cost a sha256 of every byte here and at the store",
			"err", refused.err)
		err = s.multipartRoundTrip(ctx, key)
	}
	return err
}

func (s *Store) multipartRoundTrip(ctx context.Context, key string) (err error) {
	mpu, err := retryDirRace(ctx, func() (string, error) {
		return s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{})
	})
	if err != nil {
		return fmt.Errorf("cannot start multipart uploads (s3:PutObject on multipart): %s", explain(err))
	}
	completed := false
	defer func() {
		if completed {
			return
		}
		if aerr := s.core.AbortMultipartUpload(context.WithoutCancel(ctx), s.cfg.Bucket, key, mpu); aerr != nil && err == nil {
			err = fmt.Errorf("cannot abort multipart uploads (s3:AbortMultipartUpload): %s", explain(aerr))
		}
	}()
	b := []byte("wharf")
	body, opts := s.bufferedPart(b)
	p, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, key, mpu, 1, body, int64(len(b)), opts)
	if err != nil {
		return &partRefused{"cannot upload parts (s3:PutObject on multipart)", err}
	}
	_, err = retryDirRace(ctx, func() (minio.UploadInfo, error) {
		return s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, mpu, []minio.CompletePart{{PartNumber: 1, ETag: p.ETag}}, minio.PutObjectOptions{})
	})
	if err != nil {
		return &partRefused{"cannot complete multipart uploads (s3:PutObject on multipart)", err}
	}
	completed = true
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("cannot delete objects (s3:DeleteObject): %s", explain(err))
	}
	return nil
}
