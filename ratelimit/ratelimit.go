// Package ratelimit holds the token buckets behind the policy's rate limits:
// one golang.org/x/time/rate limiter per bucket key (a rule id plus whatever
// the rule counts per: agent, server or tool), created on first use.
//
// Contract:
//   - Allow never blocks and never queues: it answers at once whether one
//     event may pass now and, when not, how long until one could.
//   - Buckets live in a fixed number of shards, each a mutex and a map, so
//     concurrent callers with different keys rarely meet on a lock and no
//     lock is global. This is deliberately not in the state store: a store
//     write per request would serialise every call on one writer lock.
//   - A bucket is dropped only when it is full again and has been unused for
//     Options.IdleAfter; a full bucket is exactly what a new one would be, so
//     eviction never lets a key exceed its limit.
//   - The number of buckets is bounded (Options.MaxBuckets). When a shard is
//     full of buckets that are all in use, a new key is refused (fail
//     closed), not admitted unlimited.
//   - The limit and burst are given on every call, as the policy in force
//     says them; a reload that changes them applies to existing buckets.
package ratelimit

import (
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// shardCount is a power of two, comfortably above the core counts agentg
// runs on, so that parallel callers spread over many locks.
const shardCount = 64

// Defaults for Options' zero values.
const (
	DefaultIdleAfter  = time.Minute
	DefaultMaxBuckets = 1 << 20
)

// Options configure a Limiter. The zero value is usable.
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

// Limiter is a sharded set of token buckets. Its methods are safe for
// concurrent use. The zero value is not usable; call New.
type Limiter struct {
	seed     maphash.Seed
	idle     time.Duration
	perShard int
	now      func() time.Time
	shards   [shardCount]shard
}

type shard struct {
	mu        sync.Mutex
	buckets   map[string]*bucket
	nextSweep time.Time
	// Padding keeps neighbouring shards' mutexes off one cache line.
	_ [64]byte
}

type bucket struct {
	lim   *rate.Limiter
	limit rate.Limit // what the policy last said, compared on each call
	burst int
	last  time.Time // last Allow on this bucket
}

// New returns an empty Limiter.
func New(opts Options) *Limiter {
	l := &Limiter{seed: maphash.MakeSeed(), idle: opts.IdleAfter, now: opts.Now}
	if l.idle <= 0 {
		l.idle = DefaultIdleAfter
	}
	max := opts.MaxBuckets
	if max <= 0 {
		max = DefaultMaxBuckets
	}
	l.perShard = (max + shardCount - 1) / shardCount
	if l.now == nil {
		l.now = time.Now
	}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*bucket)
	}
	return l
}

// Allow takes one token from key's bucket, creating the bucket (full, with
// limit and burst) on first use. It reports whether the event may pass and,
// when it may not, how long until a token is due. A burst below 1 counts as
// 1 (a bucket that can never hold a token would refuse forever); a limit of
// rate.Inf always allows; a limit of 0 or less never does (retryAfter is
// rate.InfDuration). A new key refused because the Limiter is full gets
// retryAfter Options.IdleAfter.
func (l *Limiter) Allow(key string, limit rate.Limit, burst int) (ok bool, retryAfter time.Duration) {
	switch {
	case limit == rate.Inf:
		return true, 0
	case limit <= 0 || math.IsNaN(float64(limit)):
		return false, rate.InfDuration
	}
	if burst < 1 {
		burst = 1
	}
	now := l.now()
	s := &l.shards[maphash.String(l.seed, key)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	if !now.Before(s.nextSweep) {
		s.sweep(now, l.idle)
	}
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= l.perShard {
			return false, l.idle
		}
		b = &bucket{lim: rate.NewLimiter(limit, burst), limit: limit, burst: burst}
		s.buckets[key] = b
	} else {
		// The policy may have been reloaded with another limit.
		if b.limit != limit {
			b.lim.SetLimitAt(now, limit)
			b.limit = limit
		}
		if b.burst != burst {
			b.lim.SetBurstAt(now, burst)
			b.burst = burst
		}
	}
	b.last = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, retryAfterFor(b.lim.TokensAt(now), limit)
}

// retryAfterFor is how long a bucket holding tokens (< 1) needs to reach
// one at limit tokens per second, rounded up so that a caller retrying
// after it is allowed.
func retryAfterFor(tokens float64, limit rate.Limit) time.Duration {
	secs := (1 - tokens) / float64(limit)
	if secs <= 0 {
		// Float rounding left the bucket a hair short of a token.
		return time.Nanosecond
	}
	if secs >= float64(math.MaxInt64)/float64(time.Second) {
		return rate.InfDuration
	}
	return time.Duration(math.Ceil(secs * float64(time.Second)))
}

// sweep drops the shard's buckets that are full and idle. Called with s.mu
// held, at most once per idle period per shard, so its cost is spread over
// that many calls.
func (s *shard) sweep(now time.Time, idle time.Duration) {
	for k, b := range s.buckets {
		if now.Sub(b.last) >= idle && b.lim.TokensAt(now) >= float64(b.burst) {
			delete(s.buckets, k)
		}
	}
	s.nextSweep = now.Add(idle)
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
