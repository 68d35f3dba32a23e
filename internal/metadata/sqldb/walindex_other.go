//go:build !unix

package sqldb

import (
	"database/sql/driver"
	"errors"
)

// walIndex is unix-only (it maps the -shm file); elsewhere lookups are
// never memoized.
type walIndex struct{}

func openWALIndex(driver.Driver, string, string) (*walIndex, error) {
	return nil, errors.New("sqldb: WAL index mapping is unix-only")
}

func (*walIndex) version() (walVersion, bool) { return walVersion{}, false }

func (*walIndex) close() {}
