// Rates: the token buckets behind the policy's rate limits (MCP calls,
// DNS queries): one golang.org/x/time/rate limiter per bucket key (a rule
// id plus whatever the rule counts per: agent, server or tool), created on
// first use.
//
// Contract:
//   - Allow never blocks and never queues: it answers at once whether one
//     event may pass now and, when not, how long until one could.
//   - The limit and burst are given on every call, as the policy in force
//     says them; a reload that changes them applies to existing buckets.

package limit

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Rates is a sharded set of token buckets. Its methods are safe for
// concurrent use. The zero value is not usable; call NewRates.
type Rates struct {
	m *table[rateBucket]
}

type rateBucket struct {
	lim   *rate.Limiter
	limit rate.Limit // what the policy last said, compared on each call
	burst int
}

// NewRates returns empty Rates.
func NewRates(opts Options) *Rates {
	full := func(b *rateBucket, now time.Time) bool { return b.lim.TokensAt(now) >= float64(b.burst) }
	return &Rates{m: newTable(opts, full)}
}

// Allow takes one token from key's bucket, creating the bucket (full, with
// limit and burst) on first use. It reports whether the event may pass and,
// when it may not, how long until a token is due. A burst below 1 counts as
// 1 (a bucket that can never hold a token would refuse forever); a limit of
// rate.Inf always allows; a limit of 0 or less never does (retryAfter is
// rate.InfDuration). A new key refused because the Rates are full gets
// retryAfter Options.IdleAfter.
func (l *Rates) Allow(key string, limit rate.Limit, burst int) (ok bool, retryAfter time.Duration) {
	switch {
	case limit == rate.Inf:
		return true, 0
	case limit <= 0 || math.IsNaN(float64(limit)):
		return false, rate.InfDuration
	}
	if burst < 1 {
		burst = 1
	}
	create := func(b *rateBucket, _ time.Time) {
		*b = rateBucket{lim: rate.NewLimiter(limit, burst), limit: limit, burst: burst}
	}
	found := l.m.with(key, create, func(b *rateBucket, now time.Time) {
		// The policy may have been reloaded with another limit.
		if b.limit != limit {
			b.lim.SetLimitAt(now, limit)
			b.limit = limit
		}
		if b.burst != burst {
			b.lim.SetBurstAt(now, burst)
			b.burst = burst
		}
		if ok = b.lim.AllowN(now, 1); !ok {
			retryAfter = retryAfterFor(b.lim.TokensAt(now), limit)
		}
	})
	if !found {
		return false, l.m.idleAfter()
	}
	return ok, retryAfter
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

// Len is the number of buckets held.
func (l *Rates) Len() int { return l.m.len() }
