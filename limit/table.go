package limit

// table is the sharded table every bucket, rate or quota, lives in.
//
// Contract:
//   - Entries live in a fixed number of shards, each a mutex and a map,
//     so callers with different keys rarely meet on a lock and no lock is
//     global. This is deliberately not the state store: a store write per
//     request would serialise every call on one writer lock.
//   - An entry is created on a key's first use and dropped only by a
//     sweep, once it has been unused for Options.IdleAfter and its owner
//     says it is back to what a new one would be (a full bucket), so
//     dropping one never lets a key past its limit. A shard is swept at
//     most once per idle period, on a call that finds it due, so the cost
//     is spread over that many calls.
//   - The number of entries is bounded (Options.MaxBuckets, spread evenly
//     over the shards). A new key that finds its shard full is refused:
//     the caller fails closed, it never admits the key unmetered.

import (
	"hash/maphash"
	"sync"
	"time"
)

// shardCount is how many shards a table has: a power of two, comfortably
// above the core counts agentg runs on, so that parallel callers spread
// over many locks. Tests that must touch every shard use it.
const shardCount = 64

// Defaults for Options' zero values.
const (
	DefaultIdleAfter  = time.Minute
	DefaultMaxBuckets = 1 << 20
)

// Options configure Rates and Quotas alike. The zero value is usable.
type Options struct {
	// IdleAfter is how long a full bucket stays unused before it is
	// dropped; 0 means DefaultIdleAfter.
	IdleAfter time.Duration
	// MaxBuckets bounds the buckets held at once (spread evenly over the
	// shards); 0 means DefaultMaxBuckets.
	MaxBuckets int
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// table is a sharded, bounded map of *V, safe for concurrent use. Create
// it with newTable.
type table[V any] struct {
	seed      maphash.Seed
	idle      time.Duration
	perShard  int
	now       func() time.Time
	droppable func(v *V, now time.Time) bool
	shards    [shardCount]shard[V]
}

type shard[V any] struct {
	mu        sync.Mutex
	entries   map[string]*entry[V]
	nextSweep time.Time
	_         [64]byte // keeps neighbouring shards' mutexes off one cache line
}

type entry[V any] struct {
	v    V
	last time.Time // last With on it
}

// newTable returns an empty table. droppable says whether an idle entry is back
// to its initial state, so a sweep may drop it; it runs with the entry's
// shard locked.
func newTable[V any](opts Options, droppable func(v *V, now time.Time) bool) *table[V] {
	m := &table[V]{seed: maphash.MakeSeed(), idle: opts.IdleAfter, now: opts.Now, droppable: droppable}
	if m.idle <= 0 {
		m.idle = DefaultIdleAfter
	}
	max := opts.MaxBuckets
	if max <= 0 {
		max = DefaultMaxBuckets
	}
	m.perShard = (max + shardCount - 1) / shardCount
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shards {
		m.shards[i].entries = make(map[string]*entry[V])
	}
	return m
}

// idleAfter is how long an entry stays unused before a sweep may drop it:
// how long a refused new key should wait before it tries again.
func (m *table[V]) idleAfter() time.Duration { return m.idle }

// with runs fn on key's entry, its shard locked, creating it with create
// on first use. It reports false, without calling fn, when the key has no
// entry and its shard is full.
func (m *table[V]) with(key string, create func(v *V, now time.Time), fn func(v *V, now time.Time)) bool {
	now := m.now()
	s := &m.shards[maphash.String(m.seed, key)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	if !now.Before(s.nextSweep) {
		for k, e := range s.entries {
			if now.Sub(e.last) >= m.idle && m.droppable(&e.v, now) {
				delete(s.entries, k)
			}
		}
		s.nextSweep = now.Add(m.idle)
	}
	e := s.entries[key]
	if e == nil {
		if len(s.entries) >= m.perShard {
			return false
		}
		e = new(entry[V])
		create(&e.v, now)
		s.entries[key] = e
	}
	e.last = now
	fn(&e.v, now)
	return true
}

// has reports whether key has an entry, without touching it.
func (m *table[V]) has(key string) bool {
	s := &m.shards[maphash.String(m.seed, key)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries[key]
	return ok
}

// len is the number of entries held.
func (m *table[V]) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
