// Package lru is the bounded, least-recently-used cache keyed by string
// that agentg keeps wherever a value is costly to make and cheap to keep
// (issued TLS leaves in certs, the forwarder's transports in proxy). It is
// not for tables with their own eviction rules (the DNS answer cache
// evicts by expiry and bytes; the limit table by idleness).
//
// Contract:
//   - At most Size entries (a sharded cache: at most Size+shards-1, see
//     New); past the bound the least recently used entry of the shard
//     is dropped, and OnEvict, if set, is called with it, under the
//     shard's lock (it must be quick and must not call the cache).
//   - Small caches (Size below ShardThreshold) are one exact LRU; larger
//     ones are split into shards, each an LRU with its own lock, so that
//     callers with different keys rarely meet on a lock.
//   - Get moves a hit to the front. A value past its use (a leaf due for
//     renewal) is the caller's to tell, and to replace with Put.
//   - Safe for concurrent use; no global lock; Get and Put on an
//     existing key do not allocate.
package lru

import (
	"hash/maphash"
	"sync"
)

// ShardThreshold is the size from which a cache is sharded.
const ShardThreshold = 1024

// shardCount is the number of shards of a sharded cache (power of two).
const shardCount = 16

// Cache is a bounded LRU of V by string key. Create it with New.
type Cache[V any] struct {
	seed    maphash.Seed
	mask    uint64
	onEvict func(key string, v V)
	shards  []shard[V]
}

type shard[V any] struct {
	mu    sync.Mutex
	cap   int
	items map[string]*node[V]
	head  node[V]  // sentinel: head.next is most recently used, head.prev least
	_     [32]byte // keep neighbouring shard locks off one cache line
}

type node[V any] struct {
	key        string
	v          V
	prev, next *node[V]
}

// New returns an empty cache of at most size entries (at least 1).
// onEvict, if not nil, is called with each entry the bound drops.
func New[V any](size int, onEvict func(key string, v V)) *Cache[V] {
	size = max(size, 1)
	n := 1
	if size >= ShardThreshold {
		n = shardCount
	}
	c := &Cache[V]{seed: maphash.MakeSeed(), mask: uint64(n - 1), onEvict: onEvict, shards: make([]shard[V], n)}
	per := (size + n - 1) / n
	for i := range c.shards {
		s := &c.shards[i]
		s.cap = per
		s.items = make(map[string]*node[V])
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return c
}

func (c *Cache[V]) shard(key string) *shard[V] {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, key)&c.mask]
}

// Get returns the value for key, if there is one, as the most recently
// used.
func (c *Cache[V]) Get(key string) (V, bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	s.moveToFront(e)
	return e.v, true
}

// Put stores v for key as the most recently used, dropping the least
// recently used entries of its shard past the bound.
func (c *Cache[V]) Put(key string, v V) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		e.v = v
		s.moveToFront(e)
		return
	}
	for len(s.items) >= s.cap && s.head.prev != &s.head {
		old := s.head.prev
		s.unlink(old)
		delete(s.items, old.key)
		if c.onEvict != nil {
			c.onEvict(old.key, old.v)
		}
	}
	e := &node[V]{key: key, v: v}
	s.items[key] = e
	s.pushFront(e)
}

// Len returns the number of entries.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

// Range calls fn with every entry, a shard at a time under its lock (fn
// must not call the cache), most recently used first within a shard.
func (c *Cache[V]) Range(fn func(key string, v V)) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for e := s.head.next; e != &s.head; e = e.next {
			fn(e.key, e.v)
		}
		s.mu.Unlock()
	}
}

func (s *shard[V]) unlink(e *node[V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *shard[V]) pushFront(e *node[V]) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *shard[V]) moveToFront(e *node[V]) {
	if s.head.next == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}
