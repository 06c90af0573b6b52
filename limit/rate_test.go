package limit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// clock is a settable time source safe for concurrent readers.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func newTest(c *clock, o Options) *Rates { o.Now = c.Now; return NewRates(o) }

func TestRateAllow(t *testing.T) {
	perMinute30 := rate.Every(2 * time.Second) // 30/m
	type step struct {
		advance   time.Duration
		key       string
		limit     rate.Limit
		burst     int
		ok        bool
		retryWant time.Duration // checked when !ok
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then refuse, then refill", []step{
			{0, "a", perMinute30, 2, true, 0},
			{0, "a", perMinute30, 2, true, 0},
			{0, "a", perMinute30, 2, false, 2 * time.Second},
			{500 * time.Millisecond, "a", perMinute30, 2, false, 1500 * time.Millisecond},
			{1500 * time.Millisecond, "a", perMinute30, 2, true, 0},
			{0, "a", perMinute30, 2, false, 2 * time.Second},
		}},
		{"keys are independent", []step{
			{0, "a", perMinute30, 1, true, 0},
			{0, "a", perMinute30, 1, false, 2 * time.Second},
			{0, "b", perMinute30, 1, true, 0},
		}},
		{"inf always allows", []step{
			{0, "a", rate.Inf, 0, true, 0},
			{0, "a", rate.Inf, 0, true, 0},
		}},
		{"zero and negative limits never allow", []step{
			{0, "a", 0, 5, false, rate.InfDuration},
			{time.Hour, "a", 0, 5, false, rate.InfDuration},
			{0, "b", -1, 5, false, rate.InfDuration},
		}},
		{"burst below one counts as one", []step{
			{0, "a", 1, 0, true, 0},
			{0, "a", 1, 0, false, time.Second},
			{0, "b", 1, -3, true, 0},
		}},
		{"a reloaded limit applies to the existing bucket", []step{
			{0, "a", 1, 1, true, 0},
			{0, "a", 1, 1, false, time.Second},
			{0, "a", 0.1, 1, false, 10 * time.Second},
			{0, "a", 0.1, 3, false, 10 * time.Second}, // a larger burst does not mint tokens
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := newTest(c, Options{})
			for i, s := range tt.steps {
				c.Advance(s.advance)
				ok, retry := l.Allow(s.key, s.limit, s.burst)
				if ok != s.ok {
					t.Fatalf("step %d: ok=%v, want %v", i, ok, s.ok)
				}
				if ok && retry != 0 {
					t.Errorf("step %d: allowed with retryAfter %v", i, retry)
				}
				if !ok {
					// Rounded up to the nanosecond: within a microsecond.
					if d := retry - s.retryWant; d < 0 || d > time.Microsecond {
						t.Errorf("step %d: retryAfter %v, want %v", i, retry, s.retryWant)
					}
				}
			}
		})
	}
}

// Retrying exactly after retryAfter is allowed: the rounding goes up.
func TestRateRetryAfterIsEnough(t *testing.T) {
	c := newClock()
	l := newTest(c, Options{})
	limit := rate.Limit(3) // 1/3 s is not a whole number of nanoseconds
	for i := 0; i < 100; i++ {
		ok, retry := l.Allow("k", limit, 1)
		if ok {
			continue
		}
		c.Advance(retry)
		if ok, r2 := l.Allow("k", limit, 1); !ok {
			t.Fatalf("round %d: refused after waiting %v (now %v more)", i, retry, r2)
		}
	}
}

func TestRateEviction(t *testing.T) {
	c := newClock()
	l := newTest(c, Options{IdleAfter: time.Minute})
	l.Allow("full-soon", 1, 1) // refills in 1s
	l.Allow("in-debt", rate.Every(time.Hour), 1)
	if n := l.Len(); n != 2 {
		t.Fatalf("Len %d, want 2", n)
	}
	c.Advance(2 * time.Minute)
	// Sweeps run as calls come; touch every shard.
	for i := 0; i < 10*shardCount; i++ {
		l.Allow(fmt.Sprint("other", i), 1, 1)
	}
	if l.has("full-soon") || !l.has("in-debt") {
		t.Fatalf("after idle: full-soon held %v (want false), in-debt held %v (want true)", l.has("full-soon"), l.has("in-debt"))
	}
	// The surviving bucket still refuses: eviction lost no debt.
	if ok, _ := l.Allow("in-debt", rate.Every(time.Hour), 1); ok {
		t.Fatal("in-debt bucket allowed after a sweep")
	}
	// The evicted one comes back full.
	if ok, _ := l.Allow("full-soon", 1, 1); !ok {
		t.Fatal("re-created bucket refused")
	}
}

func TestRateMaxBuckets(t *testing.T) {
	c := newClock()
	l := newTest(c, Options{MaxBuckets: shardCount, IdleAfter: time.Minute}) // one per shard
	refused := 0
	for i := 0; i < 20*shardCount; i++ {
		if ok, retry := l.Allow(fmt.Sprint("k", i), rate.Every(time.Hour), 1); !ok {
			refused++
			if retry != time.Minute {
				t.Fatalf("full limiter: retryAfter %v, want the idle period", retry)
			}
		}
	}
	if n := l.Len(); n > shardCount {
		t.Fatalf("Len %d over the bound %d", n, shardCount)
	}
	if refused == 0 {
		t.Fatal("no key refused past the bound")
	}
}

// Under concurrency a key's bucket lets through exactly its burst while the
// clock stands still.
func TestRateConcurrentExact(t *testing.T) {
	c := newClock()
	l := newTest(c, Options{})
	const burst, workers, each = 50, 8, 100
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if ok, _ := l.Allow("shared", rate.Every(time.Hour), burst); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprint("own", w, i%7), 10, 1)
			}
		}(w)
	}
	wg.Wait()
	if got := allowed.Load(); got != burst {
		t.Fatalf("allowed %d, want exactly %d", got, burst)
	}
}

func (l *Rates) has(key string) bool { return l.m.has(key) }

// singleLock is the unsharded design, as a baseline for the benchmark.
type singleLock struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (s *singleLock) allow(key string, limit rate.Limit, burst int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[key]
	if b == nil {
		b = rate.NewLimiter(limit, burst)
		s.m[key] = b
	}
	return b.AllowN(time.Now(), 1)
}

func BenchmarkRateAllowParallel(b *testing.B) {
	for _, nkeys := range []int{1, 64, 4096} {
		keys := make([]string, nkeys)
		for i := range keys {
			keys[i] = fmt.Sprintf("rule-%d:agent-%d", i%13, i)
		}
		b.Run(fmt.Sprintf("sharded/keys=%d", nkeys), func(b *testing.B) {
			l := NewRates(Options{})
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					l.Allow(keys[i%nkeys], 1e9, 1000)
					i++
				}
			})
		})
		b.Run(fmt.Sprintf("single-lock/keys=%d", nkeys), func(b *testing.B) {
			s := &singleLock{m: make(map[string]*rate.Limiter)}
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					s.allow(keys[i%nkeys], 1e9, 1000)
					i++
				}
			})
		})
	}
}
