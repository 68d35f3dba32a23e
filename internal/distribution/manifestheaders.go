package distribution

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// manifestHeaders holds the values of a manifest response's headers, built
// once per manifest instead of on every GET and HEAD: the ETag's quotes
// and the length's digits were two allocations, and the slices for the
// header map a third, on the hottest path. Responses share the slices;
// nothing writes into a header's value slice in place (Header.Set
// replaces it; Header.Add appends, which copies a slice whose capacity is
// full).
type manifestHeaders struct {
	mediaType string
	size      int
	vals      [4]string // Content-Type, Docker-Content-Digest, Etag, Content-Length
}

// headerCacheMax bounds the cache; when full it starts over, so that a
// registry with more manifests than this keeps the ones pulled since.
const headerCacheMax = 4096

// headerCache maps a digest to its manifestHeaders.
type headerCache struct {
	m    sync.Map // digest.Digest → *manifestHeaders
	size atomic.Int32
}

// get returns the header values of the manifest with digest d, type
// mediaType and size bytes. The digest alone does not fix the type: the
// same bytes can be stored under different types in two repositories.
func (c *headerCache) get(d digest.Digest, mediaType string, size int) *manifestHeaders {
	if v, ok := c.m.Load(d); ok {
		if h := v.(*manifestHeaders); h.mediaType == mediaType && h.size == size {
			return h
		}
	}
	h := &manifestHeaders{mediaType: mediaType, size: size,
		vals: [4]string{mediaType, d.String(), `"` + d.String() + `"`, strconv.Itoa(size)}}
	if c.size.Add(1) > headerCacheMax {
		c.m.Clear()
		c.size.Store(1)
	}
	c.m.Store(d, h)
	return h
}
