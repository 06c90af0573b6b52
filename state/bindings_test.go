package state

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBindings(t *testing.T) {
	c := newClock()
	b := NewBindings(BindingsOptions{Floor: 10 * time.Second, Now: c.Now})
	ip1, ip2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Bind("a", "Web.Example.", 60*time.Second, ip1))
	must(b.Bind("a", "cdn.example", 5*time.Second, ip1))
	must(b.Bind("a", "v6.example", 60*time.Second, ip2))
	must(b.Bind("b", "other.example", 60*time.Second, ip1))

	check := func(agent string, ip netip.Addr, want ...string) {
		t.Helper()
		if got := b.NamesFor(agent, ip); !slices.Equal(got, want) {
			t.Errorf("NamesFor(%q, %s) = %q, want %q", agent, ip, got, want)
		}
	}
	check("a", ip1, "cdn.example", "web.example")
	check("a", ip2, "v6.example")
	check("b", ip1, "other.example")
	check("c", ip1)                                                                   // another agent was told nothing
	check("a", netip.MustParseAddr("::ffff:192.0.2.1"), "cdn.example", "web.example") // mapped = the IPv4 address
	check("a", netip.MustParseAddr("192.0.2.10"))                                     // no prefix matching of addresses

	// TTL passed, floor not yet: still bound; floor passed: gone.
	c.Advance(14 * time.Second)
	check("a", ip1, "cdn.example", "web.example")
	c.Advance(2 * time.Second)
	check("a", ip1, "web.example")

	// A shorter answer never shortens a binding; a longer one extends it.
	must(b.Bind("a", "web.example", time.Second, ip1))
	c.Advance(60 * time.Second) // 76s after the first bind: past 60s+10s
	check("a", ip1)
	must(b.Bind("a", "web.example", time.Second, ip1))
	must(b.Bind("a", "web.example", 30*time.Second, ip1))
	c.Advance(35 * time.Second)
	check("a", ip1, "web.example")

	for _, bad := range []struct {
		name string
		ip   netip.Addr
		ttl  time.Duration
	}{{"", ip1, time.Second}, {"x.example", netip.Addr{}, time.Second}, {"x.example", ip1, -time.Second}, {"a\x00b", ip1, 0}} {
		if err := b.Bind("a", bad.name, bad.ttl, bad.ip); err == nil {
			t.Errorf("Bind(%q, %v, %v) accepted", bad.name, bad.ip, bad.ttl)
		}
	}
	if b.NamesFor("a", netip.Addr{}) != nil {
		t.Error("invalid address has names")
	}
}

func TestBindingsBounded(t *testing.T) {
	c := newClock()
	// One shard's share holds one address with ten rows of 11-byte names.
	perShard := int64(keyCost + len("a") + 10*(rowCost+11))
	b := NewBindings(BindingsOptions{MaxBytes: bindShards * perShard, Floor: -1, Now: c.Now})
	ip := netip.MustParseAddr("192.0.2.1")
	for i := range 10 {
		if err := b.Bind("a", fmt.Sprintf("n%02d.example", i), time.Duration(i+1)*time.Minute, ip); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.Stats(); s.Rows != 10 || s.Bytes != perShard {
		t.Fatalf("full: %+v, want 10 rows of %d bytes", s, perShard)
	}
	// Full: the binding closest to expiry (n00) makes room.
	if err := b.Bind("a", "new.example", time.Hour, ip); err != nil {
		t.Fatal(err)
	}
	names := b.NamesFor("a", ip)
	if n := b.Len(); n != 10 || len(names) != 10 || slices.Contains(names, "n00.example") || !slices.Contains(names, "new.example") {
		t.Fatalf("len %d, names %q", n, names)
	}
	// Expired bindings are swept before anything live is evicted.
	c.Advance(150 * time.Second) // n01 (2m) expired
	if err := b.Bind("a", "lat.example", time.Hour, ip); err != nil {
		t.Fatal(err)
	}
	names = b.NamesFor("a", ip)
	if slices.Contains(names, "n01.example") || !slices.Contains(names, "n02.example") || !slices.Contains(names, "lat.example") || b.Len() > 10 {
		t.Fatalf("after sweep: len %d, names %q", b.Len(), names)
	}
	if s := b.Stats(); s.Bytes > perShard {
		t.Fatalf("over the bound: %+v", s)
	}
}

func TestBindingsConcurrent(t *testing.T) {
	b := NewBindings(BindingsOptions{MaxBytes: 64 << 10})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
				if err := b.Bind("a", fmt.Sprintf("n%d-%d.example", g, i%50), time.Minute, ip); err != nil {
					t.Error(err)
					return
				}
				b.NamesFor("a", ip)
			}
		}()
	}
	wg.Wait()
	if s := b.Stats(); s.Bytes > 64<<10 || s.Rows == 0 {
		t.Fatalf("%+v", s)
	}
}

// Uncached answers bind new names as fast as the filter resolves them,
// from many goroutines, into a table that is full (so each new binding
// evicts one): the DNS filter's uncached path.
func BenchmarkBindNewParallel(b *testing.B) {
	bs := NewBindings(BindingsOptions{MaxBytes: 8 << 20})
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8) // the filter serves each query on its own goroutine
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if err := bs.Bind("agent", fmt.Sprintf("n%d.example.com", i), time.Minute, ip); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A Bind that returns is visible: the transparent listener may ask at
// once.
func TestBindingsVisibleOnReturn(t *testing.T) {
	b := NewBindings(BindingsOptions{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				ip := netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)})
				ip6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(g)})
				name := fmt.Sprintf("n%d-%d.example", g, i)
				if err := b.Bind("a", name, time.Minute, ip, ip6); err != nil {
					t.Error(err)
					return
				}
				if !slices.Contains(b.NamesFor("a", ip), name) || !slices.Contains(b.NamesFor("a", ip6), name) {
					t.Errorf("%s not bound to %s and %s when Bind returned", name, ip, ip6)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := b.Len(); n != 8*500*2 {
		t.Errorf("len %d, want %d", n, 8*500*2)
	}
	// One bad address and nothing of the answer is recorded.
	good := netip.MustParseAddr("192.0.2.7")
	if err := b.Bind("a", "half.example", time.Minute, good, netip.Addr{}); err == nil || b.NamesFor("a", good) != nil {
		t.Errorf("Bind with an invalid address: %v, bound %q", err, b.NamesFor("a", good))
	}
}

// Two binds of the same name and address make one row that lasts as
// long as the longer says; a shorter one after it changes nothing.
func TestBindingsSameRow(t *testing.T) {
	c := newClock()
	b := NewBindings(BindingsOptions{Floor: -1, Now: c.Now})
	ip := netip.MustParseAddr("192.0.2.1")
	for _, ttl := range []time.Duration{time.Second, time.Minute, 2 * time.Second} {
		if err := b.Bind("a", "web.example", ttl, ip); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(30 * time.Second)
	if got := b.NamesFor("a", ip); !slices.Equal(got, []string{"web.example"}) {
		t.Fatalf("names %q, want web.example still bound", got)
	}
	if n := b.Len(); n != 1 {
		t.Fatalf("len %d, want one row", n)
	}
}

// The bound is on memory: many unique names through a small budget keep
// the heap within it (the charge errs high), and the charge reported is
// what the heap grew by, within a margin, when nothing is evicted.
func TestBindingsMemoryBounded(t *testing.T) {
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	bind := func(b *Bindings, n int) {
		for i := range n {
			ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if err := b.Bind("127.0.0.1", fmt.Sprintf("n%d.bench.example", i), time.Minute, ip); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Unbounded in practice: the charge covers what the heap holds.
	h0 := heap()
	b := NewBindings(BindingsOptions{MaxBytes: 1 << 30})
	bind(b, 50_000)
	grew := int64(heap() - h0)
	s := b.Stats()
	// The go-memdb table held 1,023 bytes a row here; a row is about 200.
	if s.Rows != 50_000 || grew > s.Bytes || grew/int64(s.Rows) > 320 {
		t.Fatalf("%+v charged, heap grew %d bytes (%d per row)", s, grew, grew/int64(s.Rows))
	}
	runtime.KeepAlive(b)

	// A small budget holds: rows are evicted, the heap stays within it.
	const budget = 2 << 20
	h0 = heap()
	b = NewBindings(BindingsOptions{MaxBytes: budget})
	bind(b, 100_000)
	grew = int64(heap() - h0)
	s = b.Stats()
	if s.Bytes > budget || s.MaxBytes != budget || grew > budget+budget/4 || s.Rows < budget/(keyCost+rowCost+40)/2 {
		t.Fatalf("%+v after 100,000 names, heap grew %d bytes", s, grew)
	}
	if names := b.NamesFor("127.0.0.1", netip.AddrFrom4([4]byte{10, 1, 134, 159})); !slices.Equal(names, []string{"n99999.bench.example"}) {
		t.Fatalf("the last binding: %q", names)
	}
	runtime.KeepAlive(b)
}
