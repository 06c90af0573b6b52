package certs

import (
	"crypto/tls"
	"time"

	"github.com/agentg/agentg/internal/lru"
)

// leafCache is the issued leaves by host: an internal/lru cache (bounded,
// sharded from lru.ShardThreshold entries) whose entries carry the time
// after which they are a miss, so a leaf is renewed before it expires.
type leafCache struct {
	c *lru.Cache[leafEntry]
}

type leafEntry struct {
	cert    *tls.Certificate
	renewAt int64 // unix nanoseconds after which the entry is a miss
}

func newLeafCache(size int) *leafCache {
	return &leafCache{c: lru.New[leafEntry](size, nil)}
}

// get returns the cached leaf for host unless it is due for renewal at
// now (then the issuer issues one and puts it in its place).
func (c *leafCache) get(host string, now time.Time) (*tls.Certificate, bool) {
	e, ok := c.c.Get(host)
	if !ok || now.UnixNano() >= e.renewAt {
		return nil, false
	}
	return e.cert, true
}

// put stores cert for host, evicting the least recently used entry of the
// shard when it is full.
func (c *leafCache) put(host string, cert *tls.Certificate, renewAt time.Time) {
	c.c.Put(host, leafEntry{cert: cert, renewAt: renewAt.UnixNano()})
}

// len returns the number of cached leaves.
func (c *leafCache) len() int { return c.c.Len() }
