//go:build unix

package sqldb

import (
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// walIndex maps the head of a SQLite database's WAL index (its -shm file)
// read-only, to tell cheaply whether anything committed since a lookup.
type walIndex struct {
	words *[2 * walHeaderWords]uint32
	pin   *pointConn
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
	// SQLite follows symbolic links to name its -shm file; so must we, or
	// we might watch a stale file that no commit ever touches.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		pin.close()
		return nil, err
	}
	words, err := mapWALIndex(real + "-shm")
	if err != nil {
		pin.close()
		return nil, err
	}
	return &walIndex{words: words, pin: pin}, nil
}

// walIndexMaps holds one read-only mapping per -shm file (by device and
// inode) for the life of the process, with its descriptor open.
//
// The descriptor must never be closed: POSIX record locks belong to the
// process, and closing any descriptor of a file drops every lock the
// process holds on it, SQLite's included. Without its shared lock on the
// -shm file, the next process to open the database believes it is the
// first and rebuilds the index under the running server. SQLite's own
// VFS defers closing for the same reason. One mapping per file keeps the
// cost to a descriptor and a page per database file ever opened.
var walIndexMaps struct {
	sync.Mutex
	byFile map[[2]uint64]*[2 * walHeaderWords]uint32
}

func mapWALIndex(path string) (*[2 * walHeaderWords]uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	walIndexMaps.Lock()
	defer walIndexMaps.Unlock()
	key := [2]uint64{uint64(st.Dev), st.Ino}
	if words, ok := walIndexMaps.byFile[key]; ok {
		return words, nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// From here on fd stays open even on failure: see walIndexMaps.
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size < walIndexMap {
		return nil, fmt.Errorf("%s holds %d bytes, want at least %d", path, st.Size, walIndexMap)
	}
	mem, err := unix.Mmap(fd, 0, walIndexMap, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	words := (*[2 * walHeaderWords]uint32)(unsafe.Pointer(&mem[0]))
	if walIndexMaps.byFile == nil {
		walIndexMaps.byFile = map[[2]uint64]*[2 * walHeaderWords]uint32{}
	}
	walIndexMaps.byFile[[2]uint64{uint64(st.Dev), st.Ino}] = words
	return words, nil
}

// version returns the current header, and false while a writer is
// updating it or the index is not built.
func (w *walIndex) version() (walVersion, bool) { return readWALHeader(w.words) }

// close releases the pin; the mapping stays (see walIndexMaps).
func (w *walIndex) close() { w.pin.close() }
