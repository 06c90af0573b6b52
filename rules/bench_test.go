package rules

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/agentg/agentg/addr"
)

const millionEntries = 1_000_000

var tlds = []string{"com", "net", "org", "io", "example", "test", "info", "xyz"}

// randomName makes a deterministic pseudo-random name of 2 or 3 labels.
func randomName(r *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789-"
	labels := 1 + r.IntN(2)
	b := make([]byte, 0, 40)
	for l := 0; l < labels; l++ {
		n := 4 + r.IntN(9)
		for i := 0; i < n; i++ {
			c := letters[r.IntN(26)] // letters only at the edges
			if i > 0 && i < n-1 {
				c = letters[r.IntN(len(letters))]
			}
			b = append(b, c)
		}
		b = append(b, '.')
	}
	return string(b) + tlds[r.IntN(len(tlds))]
}

// millionPolicy writes a 1M-domain plain denylist and a policy using it.
func millionPolicy(b *testing.B) (policy string, names []string) {
	b.Helper()
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "big.txt"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	names = make([]string, 0, 1024)
	for i := 0; i < millionEntries; i++ {
		n := randomName(r)
		if i%1000 == 0 && len(names) < cap(names) {
			names = append(names, n)
		}
		fmt.Fprintln(w, n)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	policy = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("default: allow\nlists:\n  - path: big.txt\n    format: plain\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return policy, names
}

func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

func BenchmarkLoadMillion(b *testing.B) {
	policy, _ := millionPolicy(b)
	b.ReportAllocs()
	base := heapMB()
	var e *Engine
	start := time.Now()
	n := 0
	for b.Loop() {
		e = nil
		var err error
		if e, err = Load(policy); err != nil {
			b.Fatal(err)
		}
		n++
	}
	elapsed := time.Since(start)
	b.ReportMetric(heapMB()-base, "heapMB")
	b.ReportMetric(elapsed.Seconds()/float64(n), "s/load")
	s := e.Stats()
	b.ReportMetric(float64(s.Lists[0].Entries), "entries")
	b.ReportMetric(s.TableMB, "tableMB")
	runtime.KeepAlive(e)
}

func benchHosts(b *testing.B, hit bool) {
	policy, names := millionPolicy(b)
	e, err := Load(policy)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	hosts := make([]addr.Host, 1024)
	for i := range hosts {
		for {
			var s string
			switch {
			case hit:
				s = "www." + names[i%len(names)]
			case i%2 == 0:
				s = "api.cdn." + randomName(r) // shares TLDs with the list
			default:
				s = "www." + randomName(r) + ".nx" // a TLD the list does not use
			}
			h, err := addr.Canonical(s)
			if err != nil {
				b.Fatal(err)
			}
			h.Port = 443
			hosts[i] = h
			if (e.Host("", h).Action == Deny) == hit {
				break
			}
			if hit {
				b.Fatalf("%s: not denied", s)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		d := e.Host("agent", hosts[i&1023])
		if hit != (d.Action == Deny) {
			b.Fatal("wrong decision")
		}
		i++
	}
}

func BenchmarkHostMiss(b *testing.B) { benchHosts(b, false) }
func BenchmarkHostHit(b *testing.B)  { benchHosts(b, true) }
