// Package quota holds the buckets behind the policy's quotas on plain
// HTTP(S) egress: requests per period and bytes per period, one bucket
// per key (a quota's id plus the agent and host it counts per), created
// on first use.
//
// Contract:
//   - A bucket holds up to a Budget's Amount and refills continuously at
//     Amount per Period: "600/m" lets a burst of 600 and then 10 a
//     second; "1GiB/d" lets a GiB and then a GiB spread over a day.
//   - Take takes whole units (requests) and never goes below zero.
//     Charge takes what was counted after the fact (bytes as they flow)
//     and may go below zero: the debt is paid back by the refill before
//     Left lets anything start again. Nothing blocks or queues; a refusal
//     says how long until the bucket allows again.
//   - Buckets live in a fixed number of shards, each a mutex and a map, so
//     callers with different keys rarely meet on a lock and no lock is
//     global (not in the state store, for the same reason as package
//     ratelimit).
//   - A bucket is dropped only when it is full again and idle for
//     Options.IdleAfter: a full bucket is exactly what a new one would be,
//     so eviction never lets a key past its quota. The number of buckets is
//     bounded (Options.MaxBuckets); a new key that finds its shard full is
//     refused (fail closed), never admitted unmetered.
//   - The budget is given on every call, as the policy in force says it; a
//     reload that changes it applies to existing buckets (a smaller Amount
//     caps what they hold).
package quota

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

const shardCount = 64

// Defaults for Options' zero values.
const (
	DefaultIdleAfter  = time.Minute
	DefaultMaxBuckets = 1 << 20
)

// Options configure Buckets. The zero value is usable.
type Options struct {
	IdleAfter  time.Duration    // 0: DefaultIdleAfter
	MaxBuckets int              // 0: DefaultMaxBuckets
	Now        func() time.Time // nil: time.Now; tests set it
}

// Budget is what one bucket may spend: Amount per Period, Amount at once.
type Budget struct {
	Amount float64
	Period time.Duration
}

func (b Budget) valid() bool {
	return b.Amount > 0 && b.Period > 0 && !math.IsInf(b.Amount, 0) && !math.IsNaN(b.Amount)
}

// rate is the refill in units per second.
func (b Budget) rate() float64 { return b.Amount / b.Period.Seconds() }

// Buckets is a sharded set of buckets, safe for concurrent use. Create it
// with New.
type Buckets struct {
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
	_         [64]byte // keeps neighbouring shards' mutexes off one cache line
}

type bucket struct {
	level float64 // may be negative after a Charge
	at    time.Time
	full  float64 // the Amount last given
	rate  float64
	last  time.Time // last use
}

// New returns empty Buckets.
func New(opts Options) *Buckets {
	b := &Buckets{seed: maphash.MakeSeed(), idle: opts.IdleAfter, now: opts.Now}
	if b.idle <= 0 {
		b.idle = DefaultIdleAfter
	}
	max := opts.MaxBuckets
	if max <= 0 {
		max = DefaultMaxBuckets
	}
	b.perShard = (max + shardCount - 1) / shardCount
	if b.now == nil {
		b.now = time.Now
	}
	for i := range b.shards {
		b.shards[i].buckets = make(map[string]*bucket)
	}
	return b
}

// with runs fn on key's bucket, refilled to now and created full on first
// use; ok is false when there is no room for a new bucket. An invalid
// budget (zero, negative) is never ok: a quota that cannot be read
// refuses.
func (bs *Buckets) with(key string, budget Budget, fn func(b *bucket, now time.Time)) (ok bool) {
	if !budget.valid() {
		return false
	}
	now := bs.now()
	s := &bs.shards[maphash.String(bs.seed, key)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	if !now.Before(s.nextSweep) {
		s.sweep(now, bs.idle)
	}
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= bs.perShard {
			return false
		}
		b = &bucket{level: budget.Amount, at: now}
		s.buckets[key] = b
	}
	b.full, b.rate = budget.Amount, budget.rate()
	b.refill(now)
	b.last = now
	fn(b, now)
	return true
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.level += d.Seconds() * b.rate
		b.at = now
	}
	b.level = min(b.level, b.full)
}

// until is how long the bucket needs to hold want.
func (b *bucket) until(want float64) time.Duration {
	secs := (want - b.level) / b.rate
	if secs <= 0 {
		return 0
	}
	if secs >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(secs * float64(time.Second)))
}

// Take takes n units from key's bucket if it holds them. When it does
// not, nothing is taken and retryAfter says when it will.
func (bs *Buckets) Take(key string, budget Budget, n float64) (ok bool, retryAfter time.Duration) {
	if n > budget.Amount {
		return false, time.Duration(math.MaxInt64) // never, whatever the wait
	}
	found := bs.with(key, budget, func(b *bucket, _ time.Time) {
		if b.level >= n {
			b.level -= n
			ok = true
			return
		}
		retryAfter = b.until(n)
	})
	if !found {
		return false, bs.idle
	}
	return ok, retryAfter
}

// Left reports whether key's bucket holds anything (more than zero): what
// a metered exchange needs to start. When it does not, retryAfter says
// when it will.
func (bs *Buckets) Left(key string, budget Budget) (ok bool, retryAfter time.Duration) {
	found := bs.with(key, budget, func(b *bucket, _ time.Time) {
		if b.level > 0 {
			ok = true
			return
		}
		retryAfter = max(b.until(0), time.Nanosecond)
	})
	if !found {
		return false, bs.idle
	}
	return ok, retryAfter
}

// Charge takes n units from key's bucket, below zero if need be, and
// reports whether anything is left after it. A key with no room for its
// bucket is reported spent.
func (bs *Buckets) Charge(key string, budget Budget, n float64) (left bool) {
	found := bs.with(key, budget, func(b *bucket, _ time.Time) {
		b.level -= n
		left = b.level > 0
	})
	return found && left
}

// sweep drops the shard's buckets that are full and idle; called with
// s.mu held, at most once per idle period per shard.
func (s *shard) sweep(now time.Time, idle time.Duration) {
	for k, b := range s.buckets {
		b.refill(now)
		if now.Sub(b.last) >= idle && b.level >= b.full {
			delete(s.buckets, k)
		}
	}
	s.nextSweep = now.Add(idle)
}

// Len is the number of buckets held.
func (bs *Buckets) Len() int {
	n := 0
	for i := range bs.shards {
		s := &bs.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
