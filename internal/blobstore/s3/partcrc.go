package s3

import (
	"encoding/base64"
	"hash"
	"hash/crc32"
	"io"
	"net/http"

	"github.com/minio/minio-go/v7"
)

// crcTrailer is the S3 header of a CRC32C checksum, sent as a trailer.
const crcTrailer = "x-amz-checksum-crc32c"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRCPart returns the body and options for one PUT of a multipart
// upload's part: an unsigned payload whose CRC32C follows it as a
// trailer, which the store checks before it keeps the part.
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
// Exported for the benchmark's ceiling, which sends parts as wharf does.
func CRCPart(body io.Reader) (io.Reader, minio.PutObjectPartOptions) {
	trailer := make(http.Header, 1)
	h := crc32.New(castagnoli)
	// minio-go announces the trailer from the header's value before the
	// body is read; the reader sets the real one at the end.
	trailer.Set(crcTrailer, base64.StdEncoding.EncodeToString(h.Sum(nil)))
	r := &crcReader{r: body, h: h, trailer: trailer}
	return r, minio.PutObjectPartOptions{DisableContentSha256: true, Trailer: trailer}
}

// crcReader sums what is read through it and, at the end of the body,
// writes the sum into the trailer that follows the body.
type crcReader struct {
	r       io.Reader
	h       hash.Hash32
	trailer http.Header
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		c.trailer.Set(crcTrailer, base64.StdEncoding.EncodeToString(c.h.Sum(nil)))
	}
	return n, err
}
