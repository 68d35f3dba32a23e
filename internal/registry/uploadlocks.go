package registry

import (
	"strings"
	"sync"
)

// maxUploadIDLen bounds upload ids taken from URLs. The service issues
// UUIDs (36 characters); anything much longer is not one of its sessions.
const maxUploadIDLen = 64

// validUploadID reports whether id could be a session this service issued,
// so that ids which cannot be are refused before they cost a lookup.
func validUploadID(id string) bool {
	if id == "" || len(id) > maxUploadIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// uploadLocks serialises the writers of each upload session in this
// process. An entry lives only while some request holds or waits for its
// lock, so the map never holds more entries than requests in flight,
// whatever ids clients send and however their uploads end.
type uploadLocks struct {
	mu sync.Mutex
	m  map[string]*uploadLock
}

type uploadLock struct {
	sync.Mutex
	refs int // holders and waiters; guarded by uploadLocks.mu
}

// lock takes id's lock and returns the function that releases it.
func (l *uploadLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	e := l.m[id]
	if e == nil {
		if l.m == nil {
			l.m = make(map[string]*uploadLock)
		}
		e = &uploadLock{}
		// The id is a slice of the request's URL; a copy lets the key
		// keep nothing else alive.
		id = strings.Clone(id)
		l.m[id] = e
	}
	e.refs++
	l.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}

// len is the number of ids with a holder or a waiter.
func (l *uploadLocks) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
