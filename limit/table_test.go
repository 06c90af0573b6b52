package limit

import (
	"fmt"
	"testing"
	"time"
)

func TestTableBoundAndSweep(t *testing.T) {
	now := time.Unix(1e9, 0)
	type counter struct{ n int }
	m := newTable(Options{IdleAfter: time.Minute, MaxBuckets: shardCount, Now: func() time.Time { return now }},
		func(c *counter, _ time.Time) bool { return c.n == 0 })
	inc := func(key string, by int) bool {
		return m.with(key, func(c *counter, _ time.Time) {}, func(c *counter, _ time.Time) { c.n += by })
	}
	refused := 0
	for i := range 4 * shardCount {
		if !inc(fmt.Sprint("k", i), 0) {
			refused++
		}
	}
	if refused == 0 || m.len() > shardCount {
		t.Fatalf("%d refused, %d held: the bound did not hold", refused, m.len())
	}
	// An idle entry back to its start is swept; one that is not stays.
	m2 := newTable(Options{IdleAfter: time.Minute, Now: func() time.Time { return now }},
		func(c *counter, _ time.Time) bool { return c.n == 0 })
	m2.with("zero", func(*counter, time.Time) {}, func(*counter, time.Time) {})
	m2.with("busy", func(*counter, time.Time) {}, func(c *counter, _ time.Time) { c.n = 1 })
	now = now.Add(2 * time.Minute)
	for i := range 10 * shardCount {
		m2.with(fmt.Sprint("touch", i), func(*counter, time.Time) {}, func(c *counter, _ time.Time) { c.n = 1 })
	}
	if m2.has("zero") || !m2.has("busy") {
		t.Fatalf("after the sweep: zero held %v (want false), busy held %v (want true)", m2.has("zero"), m2.has("busy"))
	}
}
