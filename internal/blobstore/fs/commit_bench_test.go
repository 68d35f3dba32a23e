package fs

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkSmallBlobCommit measures what the filesystem store costs one
// small blob of a push (1 KiB, as a config or a tiny layer): start the
// upload, write it, and commit it, fsyncs included (the upload's, then
// its fan-out directory's after the rename). The blobs are distinct and
// spread over the fan-out directories as digests are, starting from a
// fresh store, so that the first commits into each directory are part of
// the figure as they are of a new registry's first pushes.
func BenchmarkSmallBlobCommit(b *testing.B) {
	s, err := New(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1024)
	i := 0
	for b.Loop() {
		i++
		binary.LittleEndian.PutUint64(data, uint64(i))
		d := digest.FromBytes(data)
		id := "u" + strconv.Itoa(i)
		startWith(b, s, id, data)
		if err := s.CommitUpload(b.Context(), id, nil, d, int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
