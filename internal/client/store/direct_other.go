//go:build !linux

package store

import (
	"errors"
	"os"
)

const directAlign = 4096

// setDirect reports that direct I/O is not used here: blobs go through the
// page cache and the fsync at commit.
func setDirect(*os.File, bool) error { return errors.ErrUnsupported }

func alignedBuf(n int) []byte { return make([]byte, n) }
