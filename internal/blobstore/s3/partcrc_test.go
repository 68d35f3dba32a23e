package s3

import (
	"bytes"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"
)

// flipAfter corrupts one byte of what it reads, after the CRC reader
// inside it has summed it: the bytes on the wire then differ from the
// trailer's checksum, as if the network had changed them.
type flipAfter struct {
	r       io.Reader
	at, off int
}

func (f *flipAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+n {
		p[f.at-f.off] ^= 0xff
	}
	f.off += n
	return n, err
}

func TestCRCPart_StoreKeepsAnIntactPartAndRefusesACorruptedOne(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	key := s.dataKey("crc-test")
	mpu, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, key, mpu)
	b := data(testPart, 7)

	body, opts := CRCPart(&flipAfter{r: bytes.NewReader(b), at: -1})
	if _, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, key, mpu, 1, body, int64(len(b)), opts); err != nil {
		t.Fatalf("intact part: %v", err)
	}

	// The corruption must sit outside the CRC reader, which is where the
	// network is.
	crcBody, opts := CRCPart(bytes.NewReader(b))
	_, err = s.core.PutObjectPart(ctx, s.cfg.Bucket, key, mpu, 2, &flipAfter{r: crcBody, at: len(b) / 2}, int64(len(b)), opts)
	if err == nil {
		t.Fatal("a part whose bytes do not match its CRC32C trailer was stored")
	}
	t.Logf("corrupted part refused: %v", err)
	parts, err := s.core.ListObjectParts(ctx, s.cfg.Bucket, key, mpu, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.ObjectParts) != 1 || parts.ObjectParts[0].PartNumber != 1 {
		t.Fatalf("parts stored = %+v, want part 1 only", parts.ObjectParts)
	}
}
