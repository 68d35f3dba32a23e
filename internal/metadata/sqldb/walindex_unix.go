//go:build unix

package sqldb

import (
	"database/sql/driver"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// walIndex maps the head of a SQLite database's WAL index (its -shm file)
// read-only, to tell cheaply whether anything committed since a lookup.
type walIndex struct {
	words *[2 * walHeaderWords]uint32
	pin   driver.Conn
}

// walIndexMap is how much of the file is mapped; the headers are at its
// start, and SQLite grows the file in 32 KiB steps.
const walIndexMap = 4096

// openWALIndex maps the WAL index of the database at path, opened by dsn.
func openWALIndex(drv driver.Driver, dsn, path string) (*walIndex, error) {
	pin, err := pinSQLite(drv, dsn)
	if err != nil {
		return nil, err
	}
	mem, err := mapFile(path+"-shm", walIndexMap)
	if err != nil {
		pin.Close()
		return nil, err
	}
	w := &walIndex{words: (*[2 * walHeaderWords]uint32)(unsafe.Pointer(&mem[0])), pin: pin}
	// Unmapped only once nothing can read through w: a lookup racing
	// close still holds it.
	runtime.AddCleanup(w, func(mem []byte) { _ = unix.Munmap(mem) }, mem)
	return w, nil
}

func mapFile(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < int64(n) {
		return nil, fmt.Errorf("%s holds %d bytes, want at least %d", path, fi.Size(), n)
	}
	return unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
}

// version returns the current header, and false while a writer is
// updating it or the index is not built.
func (w *walIndex) version() (walVersion, bool) { return readWALHeader(w.words) }

// close releases the pin; the mapping goes when w is unreachable.
func (w *walIndex) close() error { return w.pin.Close() }
