package certs

import (
	"crypto/tls"
	"hash/maphash"
	"sync"
	"time"
)

// leafCache is a bounded LRU of issued leaves keyed by host. It is split into
// shards, each with its own lock, so concurrent handshakes for different hosts
// do not serialise on one mutex. Small caches use a single shard and are an
// exact LRU; large ones are an LRU per shard with a total bound of at most
// size+shards-1 entries.
type leafCache struct {
	seed   maphash.Seed
	mask   uint64
	shards []cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	cap   int
	items map[string]*cacheEntry
	head  cacheEntry // sentinel: head.next is most recently used, head.prev least
	_     [32]byte   // keep neighbouring shard locks off one cache line
}

type cacheEntry struct {
	host       string
	cert       *tls.Certificate
	renewAt    int64 // unix nanoseconds after which the entry is a miss
	prev, next *cacheEntry
}

// shardThreshold is the cache size from which the cache is sharded.
const (
	shardThreshold = 1024
	numShards      = 16 // power of two
)

func newLeafCache(size int) *leafCache {
	n := 1
	if size >= shardThreshold {
		n = numShards
	}
	c := &leafCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]cacheShard, n)}
	per := (size + n - 1) / n
	for i := range c.shards {
		s := &c.shards[i]
		s.cap = per
		s.items = make(map[string]*cacheEntry)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return c
}

func (c *leafCache) shard(host string) *cacheShard {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, host)&c.mask]
}

// get returns the cached leaf for host unless it is due for renewal at now.
func (c *leafCache) get(host string, now time.Time) (*tls.Certificate, bool) {
	s := c.shard(host)
	s.mu.Lock()
	e, ok := s.items[host]
	if !ok || now.UnixNano() >= e.renewAt {
		s.mu.Unlock()
		return nil, false
	}
	s.moveToFront(e)
	cert := e.cert
	s.mu.Unlock()
	return cert, true
}

// put stores cert for host, evicting the least recently used entry of the
// shard when it is full.
func (c *leafCache) put(host string, cert *tls.Certificate, renewAt time.Time) {
	s := c.shard(host)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[host]; ok {
		e.cert, e.renewAt = cert, renewAt.UnixNano()
		s.moveToFront(e)
		return
	}
	for len(s.items) >= s.cap && s.head.prev != &s.head {
		old := s.head.prev
		s.unlink(old)
		delete(s.items, old.host)
	}
	e := &cacheEntry{host: host, cert: cert, renewAt: renewAt.UnixNano()}
	s.items[host] = e
	s.pushFront(e)
}

// len returns the number of cached leaves.
func (c *leafCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

func (s *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *cacheShard) moveToFront(e *cacheEntry) {
	if s.head.next == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}
