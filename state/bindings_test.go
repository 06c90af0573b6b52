package state

import (
	"fmt"
	"net/netip"
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
	b := NewBindings(BindingsOptions{MaxEntries: 10, Floor: -1, Now: c.Now})
	ip := netip.MustParseAddr("192.0.2.1")
	for i := range 10 {
		if err := b.Bind("a", fmt.Sprintf("n%d.example", i), time.Duration(i+1)*time.Minute, ip); err != nil {
			t.Fatal(err)
		}
	}
	// Full: the binding closest to expiry (n0) makes room, once the
	// write buffer is committed (Len commits it).
	if err := b.Bind("a", "new.example", time.Hour, ip); err != nil {
		t.Fatal(err)
	}
	n := b.Len()
	names := b.NamesFor("a", ip)
	if n != 10 || len(names) != 10 || slices.Contains(names, "n0.example") || !slices.Contains(names, "new.example") {
		t.Fatalf("len %d, names %q", b.Len(), names)
	}
	// Expired bindings are swept before anything live is evicted.
	c.Advance(150 * time.Second) // n1 (2m) expired
	if err := b.Bind("a", "later.example", time.Hour, ip); err != nil {
		t.Fatal(err)
	}
	n = b.Len()
	names = b.NamesFor("a", ip)
	if slices.Contains(names, "n1.example") || !slices.Contains(names, "n2.example") || n > 10 {
		t.Fatalf("after sweep: len %d, names %q", b.Len(), names)
	}
}

func TestBindingsConcurrent(t *testing.T) {
	b := NewBindings(BindingsOptions{MaxEntries: 500})
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
	if n := b.Len(); n > 500 || n == 0 {
		t.Fatalf("len %d", n)
	}
}

// Uncached answers bind new names as fast as the filter resolves them,
// from many goroutines, into a table that is full (so each new binding
// evicts one): the DNS filter's uncached path.
func BenchmarkBindNewParallel(b *testing.B) {
	bs := NewBindings(BindingsOptions{MaxEntries: 50_000})
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

// A Bind that returns has been committed, whoever's commit carried it
// (see Bindings.write): the transparent listener may ask at once.
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

// Two binds of the same name and address before a commit make one row
// that lasts as long as the longer says; a shorter one after it changes
// nothing.
func TestBindingsSameRowInOneCommit(t *testing.T) {
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
		t.Fatalf("names before the commit %q, want web.example still bound", got)
	}
	if n := b.Len(); n != 1 { // Len commits
		t.Fatalf("len %d, want one row", n)
	}
	if got := b.NamesFor("a", ip); !slices.Equal(got, []string{"web.example"}) {
		t.Fatalf("names after the commit %q, want web.example still bound", got)
	}
}

// A bind is read back from the write buffer, from the table once
// committed, and once (not twice) while a commit is between the two.
func TestBindingsBufferThenTable(t *testing.T) {
	b := NewBindings(BindingsOptions{MaxEntries: 16 * 64}) // a buffer of 64
	ip := netip.MustParseAddr("192.0.2.9")
	if err := b.Bind("a", "first.example", time.Minute, ip); err != nil {
		t.Fatal(err)
	}
	if got := b.NamesFor("a", ip); !slices.Equal(got, []string{"first.example"}) {
		t.Fatalf("from the buffer: %q", got)
	}
	// Committed, still in the buffer: as a commit leaves it just before
	// it drops what it wrote.
	b.mu.Lock()
	b.bufMu.Lock()
	rows := []*binding{b.buf[bindKey("a", ip)+"\x00first.example"]}
	b.bufMu.Unlock()
	if err := b.commitLocked(rows); err != nil {
		t.Fatal(err)
	}
	b.mu.Unlock()
	if got := b.NamesFor("a", ip); !slices.Equal(got, []string{"first.example"}) {
		t.Fatalf("in both: %q", got)
	}
	if b.Len() != 1 || len(b.buf) != 0 {
		t.Fatalf("after the commit: len %d, %d buffered", b.Len(), len(b.buf))
	}
	// Past the buffer's size a commit starts on its own.
	for i := range 200 {
		if err := b.Bind("a", fmt.Sprintf("n%d.example", i), time.Minute, ip); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.bufMu.Lock()
		n := len(b.buf)
		b.bufMu.Unlock()
		if n < 64 && !b.flushing.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bindings still buffered", n)
		}
	}
	if got := b.NamesFor("a", ip); len(got) != 201 {
		t.Fatalf("%d names, want 201", len(got))
	}
}
