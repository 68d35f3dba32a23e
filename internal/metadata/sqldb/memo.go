package sqldb

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"
)

// memo keeps point lookups' answers for one WAL index version. A manifest
// GET by tag spent a fifth of its CPU in SQLite answering the same
// question as the request before it; between commits the answer cannot
// change, and the WAL index header says whether anything committed, by
// any connection of any process, for the price of two dozen memory loads.
//
// Correctness rests on one rule: an answer is stored under the version
// read before its query began. If that version is still current when the
// answer is wanted, no commit happened since before the query, so the
// query saw exactly the current data. A commit in between makes the
// version differ and the answer unused, never wrong.
type memo struct {
	gen atomic.Pointer[memoGen]
}

// memoGen holds the answers for one version.
type memoGen struct {
	ver     walVersion
	answers sync.Map // memoKey → memoAnswer
	size    atomic.Int32
}

// memoMax bounds one version's answers, so that a flood of distinct
// lookups (tags that do not exist, say) cannot grow memory between
// commits; when it is reached the memo starts over.
const memoMax = 16384

type memoKey struct {
	query string
	a, b  any
}

// memoAnswer is a value or sql.ErrNoRows.
type memoAnswer struct {
	v     driver.Value
	noRow bool
}

func newMemoKey(query string, args []any) memoKey {
	k := memoKey{query: query}
	if len(args) > 0 {
		k.a = args[0]
	}
	if len(args) > 1 {
		k.b = args[1]
	}
	return k
}

// get returns the answer stored under ver for k, if any.
func (m *memo) get(ver walVersion, k memoKey) (driver.Value, error, bool) {
	g := m.gen.Load()
	if g == nil || g.ver != ver {
		return nil, nil, false
	}
	a, ok := g.answers.Load(k)
	if !ok {
		return nil, nil, false
	}
	ans := a.(memoAnswer)
	if ans.noRow {
		return nil, sql.ErrNoRows, true
	}
	return ans.v, nil, true
}

// put stores a lookup's outcome under ver, the version read before the
// lookup's query began. Failures other than no row are not answers.
func (m *memo) put(ver walVersion, k memoKey, v driver.Value, err error) {
	ans := memoAnswer{v: v, noRow: errors.Is(err, sql.ErrNoRows)}
	if err != nil && !ans.noRow {
		return
	}
	switch v.(type) {
	case nil, string, int64:
	default:
		return // a []byte would be shared with every caller
	}
	g := m.gen.Load()
	if g == nil || g.ver != ver || g.size.Load() >= memoMax {
		// A lookup that read an older version than the current one may
		// replace a newer generation; the next lookup puts it back. That
		// costs a query, never a wrong answer.
		ng := &memoGen{ver: ver}
		if !m.gen.CompareAndSwap(g, ng) {
			return
		}
		g = ng
	}
	if _, loaded := g.answers.LoadOrStore(k, ans); !loaded {
		g.size.Add(1)
	}
}
