package lru

import (
	"fmt"
	"sync"
	"testing"
)

func TestLRU(t *testing.T) {
	type step struct {
		op   string // "put", "hit", "miss"
		key  string
		v    int
		gone string // put: the key it must evict, if any
	}
	for _, tc := range []struct {
		name  string
		size  int
		steps []step
		len   int
	}{
		{
			name: "evicts least recently used",
			size: 2,
			steps: []step{
				{op: "put", key: "a", v: 1}, {op: "put", key: "b", v: 2},
				{op: "hit", key: "a", v: 1}, // a is now most recent
				{op: "put", key: "c", v: 3, gone: "b"},
				{op: "miss", key: "b"}, {op: "hit", key: "a", v: 1}, {op: "hit", key: "c", v: 3},
			},
			len: 2,
		},
		{
			name: "re-put refreshes without growing",
			size: 2,
			steps: []step{
				{op: "put", key: "a", v: 1}, {op: "put", key: "b", v: 2}, {op: "put", key: "a", v: 10},
				{op: "put", key: "c", v: 3, gone: "b"},
				{op: "hit", key: "a", v: 10}, {op: "miss", key: "b"},
			},
			len: 2,
		},
		{
			name:  "size one",
			size:  1,
			steps: []step{{op: "put", key: "a", v: 1}, {op: "put", key: "b", v: 2, gone: "a"}, {op: "miss", key: "a"}, {op: "hit", key: "b", v: 2}},
			len:   1,
		},
		{
			name:  "size zero holds one",
			size:  0,
			steps: []step{{op: "put", key: "a", v: 1}, {op: "hit", key: "a", v: 1}},
			len:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var evicted []string
			c := New(tc.size, func(k string, _ int) { evicted = append(evicted, k) })
			for i, s := range tc.steps {
				switch s.op {
				case "put":
					evicted = nil
					c.Put(s.key, s.v)
					if want := s.gone; (want == "") != (len(evicted) == 0) || (want != "" && (len(evicted) != 1 || evicted[0] != want)) {
						t.Fatalf("step %d: Put(%q) evicted %v, want %q", i, s.key, evicted, want)
					}
				case "hit", "miss":
					got, ok := c.Get(s.key)
					if ok != (s.op == "hit") || (ok && got != s.v) {
						t.Fatalf("step %d: Get(%q) = %d,%v; want %s %d", i, s.key, got, ok, s.op, s.v)
					}
				}
			}
			if got := c.Len(); got != tc.len {
				t.Errorf("Len = %d, want %d", got, tc.len)
			}
		})
	}
}

// A sharded cache keeps its bound to within one entry per shard.
func TestShardedBound(t *testing.T) {
	const size = 4096
	evicted := 0
	c := New(size, func(string, struct{}) { evicted++ })
	if len(c.shards) != shardCount {
		t.Fatalf("%d shards, want %d", len(c.shards), shardCount)
	}
	for n := range 5 * size {
		c.Put(fmt.Sprintf("h%d.example", n), struct{}{})
	}
	got := c.Len()
	if got > size || got < size-shardCount {
		t.Fatalf("len = %d after %d puts, want about %d", got, 5*size, size)
	}
	if evicted != 5*size-got {
		t.Fatalf("OnEvict saw %d, want %d", evicted, 5*size-got)
	}
	seen := 0
	c.Range(func(string, struct{}) { seen++ })
	if seen != got {
		t.Fatalf("Range saw %d entries, Len says %d", seen, got)
	}
}

// Concurrent users of one key and of many keep the cache consistent (run
// with -race).
func TestConcurrent(t *testing.T) {
	c := New[int](ShardThreshold, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := fmt.Sprint("k", (g*7+i)%3000)
				c.Put(k, i)
				if v, ok := c.Get(k); ok && v < 0 {
					t.Error("negative value")
				}
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > ShardThreshold+shardCount-1 {
		t.Fatalf("Len = %d past the bound", n)
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c := New[int](4096, nil)
	for i := range 4096 {
		c.Put(fmt.Sprint("h", i), i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get("h" + "17")
			i++
		}
	})
}
