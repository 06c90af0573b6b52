package state

import (
	"crypto/sha256"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source safe for concurrent readers.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newStore returns a store on clock c (nil: a new one) whose background
// work never runs on its own, closed when the test ends.
func newStore(t testing.TB, c *clock, o Options) *Memory {
	t.Helper()
	if c == nil {
		c = newClock()
	}
	o.Now = c.Now
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Hour
	}
	if o.WriteInterval == 0 {
		o.WriteInterval = -1
	}
	if o.OnError == nil {
		o.OnError = func(err error) { t.Errorf("store error: %v", err) }
	}
	m, err := NewMemory(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func hashOf(s string) Hash { return Hash(sha256.Sum256([]byte(s))) }
