package shardmap

import (
	"fmt"
	"testing"
	"time"
)

func TestBoundAndSweep(t *testing.T) {
	now := time.Unix(1e9, 0)
	type counter struct{ n int }
	m := New(Options{IdleAfter: time.Minute, MaxEntries: Shards, Now: func() time.Time { return now }},
		func(c *counter, _ time.Time) bool { return c.n == 0 })
	inc := func(key string, by int) bool {
		return m.With(key, func(c *counter, _ time.Time) {}, func(c *counter, _ time.Time) { c.n += by })
	}
	refused := 0
	for i := range 4 * Shards {
		if !inc(fmt.Sprint("k", i), 0) {
			refused++
		}
	}
	if refused == 0 || m.Len() > Shards {
		t.Fatalf("%d refused, %d held: the bound did not hold", refused, m.Len())
	}
	// An idle entry back to its start is swept; one that is not stays.
	m2 := New(Options{IdleAfter: time.Minute, Now: func() time.Time { return now }},
		func(c *counter, _ time.Time) bool { return c.n == 0 })
	m2.With("zero", func(*counter, time.Time) {}, func(*counter, time.Time) {})
	m2.With("busy", func(*counter, time.Time) {}, func(c *counter, _ time.Time) { c.n = 1 })
	now = now.Add(2 * time.Minute)
	for i := range 10 * Shards {
		m2.With(fmt.Sprint("touch", i), func(*counter, time.Time) {}, func(c *counter, _ time.Time) { c.n = 1 })
	}
	if m2.Has("zero") || !m2.Has("busy") {
		t.Fatalf("after the sweep: zero held %v (want false), busy held %v (want true)", m2.Has("zero"), m2.Has("busy"))
	}
}
