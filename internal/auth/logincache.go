package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// loginCacheTTL is how long a verified password is trusted without
// hashing it again. Clients using HTTP Basic (curl, simple scripts, the
// conformance suite) send it on every request, and each argon2id check
// costs tens of milliseconds and 19 MiB. An entry holds the stored hash
// the password was checked against, and is used only while the user's
// stored hash is still that one: a password changed or a user removed by
// another replica or process is honoured at once, for the price of one
// indexed read instead of a hash. Access tokens are cheap to check and
// never cached, so revoking one takes effect at once.
const loginCacheTTL = 30 * time.Second

// loginCacheMax bounds the cache; when full it starts over.
const loginCacheMax = 10000

// loginCache remembers successful password logins under a keyed hash of
// user and password, so that the password itself is never kept.
type loginCache struct {
	key []byte

	mu      sync.Mutex
	entries map[[32]byte]loginEntry
}

type loginEntry struct {
	sub     Subject
	hash    string // the stored password hash the password matched
	expires time.Time
}

func newLoginCache() *loginCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &loginCache{key: key, entries: map[[32]byte]loginEntry{}}
}

func (c *loginCache) id(user, password string) [32]byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// get returns the entry of a login of user with password verified less
// than loginCacheTTL ago.
func (c *loginCache) get(user, password string, now time.Time) (loginEntry, bool) {
	id := c.id(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || !now.Before(e.expires) {
		return loginEntry{}, false
	}
	return e, true
}

// put remembers that password matched the stored hash of user.
func (c *loginCache) put(user, password, hash string, sub Subject, now time.Time) {
	id := c.id(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= loginCacheMax {
		clear(c.entries)
	}
	c.entries[id] = loginEntry{sub: sub, hash: hash, expires: now.Add(loginCacheTTL)}
}

// forget drops every cached login of user.
func (c *loginCache) forget(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.entries {
		if e.sub.User == user {
			delete(c.entries, id)
		}
	}
}
