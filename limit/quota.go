// Quotas: the buckets behind the policy's quotas on plain HTTP(S)
// egress: requests per period and bytes per period, one bucket per key (a
// quota's id plus the agent and host it counts per), created on first
// use.
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
//   - The budget is given on every call, as the policy in force says it; a
//     reload that changes it applies to existing buckets (a smaller Amount
//     caps what they hold).

package limit

import (
	"math"
	"time"
)

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

// Quotas is a sharded set of buckets, safe for concurrent use. Create it
// with NewQuotas.
type Quotas struct {
	m *table[quotaBucket]
}

type quotaBucket struct {
	level float64 // may be negative after a Charge
	at    time.Time
	full  float64 // the Amount last given
	rate  float64
}

// NewQuotas returns empty Quotas.
func NewQuotas(opts Options) *Quotas {
	full := func(b *quotaBucket, now time.Time) bool {
		b.refill(now)
		return b.level >= b.full
	}
	return &Quotas{m: newTable(opts, full)}
}

// with runs fn on key's bucket, refilled to now and created full on first
// use; ok is false when there is no room for a new bucket. An invalid
// budget (zero, negative) is never ok: a quota that cannot be read
// refuses.
func (bs *Quotas) with(key string, budget Budget, fn func(b *quotaBucket, now time.Time)) (ok bool) {
	if !budget.valid() {
		return false
	}
	create := func(b *quotaBucket, now time.Time) { *b = quotaBucket{level: budget.Amount, at: now} }
	return bs.m.with(key, create, func(b *quotaBucket, now time.Time) {
		b.full, b.rate = budget.Amount, budget.rate()
		b.refill(now)
		fn(b, now)
	})
}

func (b *quotaBucket) refill(now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.level += d.Seconds() * b.rate
		b.at = now
	}
	b.level = min(b.level, b.full)
}

// until is how long the bucket needs to hold want.
func (b *quotaBucket) until(want float64) time.Duration {
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
func (bs *Quotas) Take(key string, budget Budget, n float64) (ok bool, retryAfter time.Duration) {
	if n > budget.Amount {
		return false, time.Duration(math.MaxInt64) // never, whatever the wait
	}
	found := bs.with(key, budget, func(b *quotaBucket, _ time.Time) {
		if b.level >= n {
			b.level -= n
			ok = true
			return
		}
		retryAfter = b.until(n)
	})
	if !found {
		return false, bs.m.idleAfter()
	}
	return ok, retryAfter
}

// Left reports whether key's bucket holds anything (more than zero): what
// a metered exchange needs to start. When it does not, retryAfter says
// when it will.
func (bs *Quotas) Left(key string, budget Budget) (ok bool, retryAfter time.Duration) {
	found := bs.with(key, budget, func(b *quotaBucket, _ time.Time) {
		if b.level > 0 {
			ok = true
			return
		}
		retryAfter = max(b.until(0), time.Nanosecond)
	})
	if !found {
		return false, bs.m.idleAfter()
	}
	return ok, retryAfter
}

// Charge takes n units from key's bucket, below zero if need be, and
// reports whether anything is left after it. A key with no room for its
// bucket is reported spent.
func (bs *Quotas) Charge(key string, budget Budget, n float64) (left bool) {
	found := bs.with(key, budget, func(b *quotaBucket, _ time.Time) {
		b.level -= n
		left = b.level > 0
	})
	return found && left
}

// Len is the number of buckets held.
func (bs *Quotas) Len() int { return bs.m.len() }
