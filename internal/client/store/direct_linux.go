package store

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directAlign is the alignment direct I/O wants of a write's memory, offset
// and length: the logical block size, 4096 on any current disk (512-byte
// devices accept it too).
const directAlign = 4096

// setDirect turns direct I/O (O_DIRECT) on or off for f. An error, e.g. from
// a file system without direct I/O, leaves f as it was.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		var fl int
		if fl, serr = unix.FcntlInt(fd, unix.F_GETFL, 0); serr != nil {
			return
		}
		if on {
			fl |= unix.O_DIRECT
		} else {
			fl &^= unix.O_DIRECT
		}
		_, serr = unix.FcntlInt(fd, unix.F_SETFL, fl)
	})
	if err != nil {
		return err
	}
	return serr
}

// alignedBuf returns a buffer of n bytes (a multiple of directAlign) whose
// first byte is directAlign-aligned, as direct I/O requires of memory.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (directAlign - 1))
	if off != 0 {
		off = directAlign - off
	}
	return b[off : off+n : off+n]
}
