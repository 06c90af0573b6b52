package dnsfilter

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/rules"
)

// The answer cache: checked answers from upstreams, by question, for
// their TTL clamped by the policy (dns.cache). It holds what upstreams
// said, not what an agent was told: the per-agent answer checks run on
// every hit, so a policy reload or another agent's rules apply to cached
// answers too.
//
// It is bounded in entries and in bytes, both split evenly over the
// shards (so the bound holds to within one shard's rounding). Over a
// bound, a shard drops expired entries it meets and then, among a few
// entries sampled at random, the one closest to expiry: cheap, and close
// enough to LRU for a resolver whose hot names are short-lived.

const (
	cacheShards = 16
	evictSample = 8
	// staleTTL is the TTL of an answer served stale (RFC 8767 §4).
	staleTTL = 30
	// entryOverhead approximates the Go memory of an entry beyond its
	// records' wire size: the entry, the map slot, record headers.
	entryOverhead = 160
	rrOverhead    = 48
	// memoOverhead approximates a hit memo (hit.go) beyond its two
	// packed replies.
	memoOverhead = 400
)

type cacheKey struct {
	name  string // canonical: lower case, no trailing dot
	qtype uint16
}

// entry is one cached answer. It is immutable once cached, but for its
// hit memo (hit.go), which is derived from it and replaced whole.
type entry struct {
	rcode    int
	answer   []dns.RR // sanitized (check.go): only the chain to the question
	ns       []dns.RR // the SOA of a negative answer
	expires  time.Time
	upstream string // spec of the upstream that answered
	size     int64  // changed under its shard's lock only
	memo     atomic.Pointer[hitMemo]
	charged  atomic.Bool // a memo's size is in size
}

// ttlLeft is the TTL to hand out now: the seconds until expiry, rounded
// up, or staleTTL for an answer served past it.
func (e *entry) ttlLeft(now time.Time) uint32 {
	d := e.expires.Sub(now)
	if d <= 0 {
		return staleTTL
	}
	return uint32(min(math.Ceil(d.Seconds()), math.MaxInt32))
}

type cache struct {
	now        func() time.Time
	seed       maphash.Seed
	maxEntries atomic.Int64 // per shard
	maxBytes   atomic.Int64 // per shard
	stale      atomic.Int64 // serve_stale, nanoseconds
	shards     [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	m     map[cacheKey]*entry
	bytes int64
	_     [40]byte // keep neighbouring shards' locks off one cache line
}

func newCache(c rules.DNSCache, now func() time.Time) *cache {
	ch := &cache{now: now, seed: maphash.MakeSeed()}
	for i := range ch.shards {
		ch.shards[i].m = make(map[cacheKey]*entry)
	}
	ch.setLimits(c)
	return ch
}

// setLimits applies a policy's bounds; a shrunk cache sheds what is
// over them at once.
func (c *cache) setLimits(l rules.DNSCache) {
	maxN := int64(max(1, (l.MaxEntries+cacheShards-1)/cacheShards))
	maxB := max(1, (l.MaxBytes+cacheShards-1)/cacheShards)
	shrunk := maxN < c.maxEntries.Load() || maxB < c.maxBytes.Load()
	c.maxEntries.Store(maxN)
	c.maxBytes.Store(maxB)
	c.stale.Store(int64(l.ServeStale))
	if !shrunk {
		return
	}
	now, stale := c.now(), time.Duration(l.ServeStale)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.evictLocked(cacheKey{}, now, stale, maxN, maxB)
		sh.mu.Unlock()
	}
}

func (c *cache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.name)%cacheShards]
}

// get returns the entry for k and whether it is fresh; a stale entry is
// returned (fresh false) only within serve_stale of its expiry.
func (c *cache) get(k cacheKey) (e *entry, fresh bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	e = sh.m[k]
	sh.mu.RUnlock()
	if e == nil {
		return nil, false
	}
	now := c.now()
	if now.Before(e.expires) {
		return e, true
	}
	if now.Before(e.expires.Add(time.Duration(c.stale.Load()))) {
		return e, false
	}
	return nil, false
}

// put caches e under k, evicting to stay within the bounds.
func (c *cache) put(k cacheKey, e *entry) {
	sh := c.shard(k)
	maxN, maxB := c.maxEntries.Load(), c.maxBytes.Load()
	if e.size > maxB {
		return // larger than a shard may hold: not cached at all
	}
	now := c.now()
	stale := time.Duration(c.stale.Load())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.m[k]; old != nil {
		sh.bytes -= old.size
	}
	sh.m[k] = e
	sh.bytes += e.size
	sh.evictLocked(k, now, stale, maxN, maxB)
}

// evictLocked drops entries (never k) until sh is within maxN entries
// and maxB bytes.
func (sh *cacheShard) evictLocked(k cacheKey, now time.Time, stale time.Duration, maxN, maxB int64) {
	for int64(len(sh.m)) > maxN || sh.bytes > maxB {
		var victim cacheKey
		var ve *entry
		n := 0
		for vk, v := range sh.m { // map order is random: a sample
			if vk == k {
				continue
			}
			if !now.Before(v.expires.Add(stale)) {
				victim, ve = vk, v
				break // dead already
			}
			if ve == nil || v.expires.Before(ve.expires) {
				victim, ve = vk, v
			}
			if n++; n >= evictSample {
				break
			}
		}
		if ve == nil {
			break // only k is left
		}
		delete(sh.m, victim)
		sh.bytes -= ve.size
	}
}

// stats returns the entries held and their estimated bytes.
func (c *cache) stats() (entries int, bytes int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		entries += len(sh.m)
		bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return entries, bytes
}

// entrySize estimates an entry's memory.
func entrySize(name string, e *entry) int64 {
	n := int64(entryOverhead + len(name) + len(e.upstream))
	for _, rr := range e.answer {
		n += int64(dns.Len(rr) + rrOverhead)
	}
	for _, rr := range e.ns {
		n += int64(dns.Len(rr) + rrOverhead)
	}
	return n
}

// memoSize estimates a hit memo of e's (hit.go), with both its packed
// replies.
func memoSize(name string, e *entry) int64 {
	wire := 12 + len(name) + 6 + 11 // header, question, OPT
	for _, rr := range e.answer {
		wire += dns.Len(rr) + 24 // the record, its event text and address
	}
	return int64(memoOverhead + 2*wire)
}

// charge adds delta bytes (a hit memo) to e, when e is still what k
// holds; the shard sheds entries for it on its next write.
func (c *cache) charge(k cacheKey, e *entry, delta int64) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[k] == e {
		e.size += delta
		sh.bytes += delta
	}
}
