// Command agentg-dnsbench measures agentg's DNS filter with dnsperf:
// against a loopback upstream directly, against dnsmasq forwarding to it,
// and against agentg (its own process) with events off and with every
// query logged to a file; a 1,000,000-name denylist is loaded into agentg
// and dnsmasq. It prints one Markdown table, then the memory of the
// filter's cache holding 100,000 names. scripts/bench-dns.sh runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agentg/agentg/bench"
	"github.com/agentg/agentg/internal/testenv"
)

func main() {
	agentgBin := flag.String("agentg", "", "agentg binary (empty: build one)")
	seconds := flag.Int("seconds", 10, "length of each cached and blocked run")
	unique := flag.Int("unique", 200000, "names in the uncached run, each asked once")
	memNames := flag.Int("memory-names", 100000, "names in the cache-memory measurement")
	keep := flag.Bool("keep", false, "keep the working directory")
	flag.Parse()
	if err := run(*agentgBin, *seconds, *unique, *memNames, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "agentg-dnsbench:", err)
		os.Exit(1)
	}
}

type target struct {
	name  string
	addr  string
	start func() (string, func(), error)
}

func run(agentgBin string, seconds, unique, memNames int, keep bool) error {
	dir, err := os.MkdirTemp("", "agentg-dnsbench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "working directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if agentgBin == "" {
		if agentgBin, err = testenv.AgentgBinary(); err != nil {
			return err
		}
	}
	up, err := bench.StartDNSUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	fmt.Fprintln(os.Stderr, "writing the denylist and query files")
	if err := bench.WriteDNSInputs(dir, 1000, unique); err != nil {
		return err
	}

	agentg := func(log string) func() (string, func(), error) {
		return func() (string, func(), error) {
			sub := filepath.Join(dir, "agentg-"+log)
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return "", nil, err
			}
			if err := os.Link(filepath.Join(dir, "denylist.txt"), filepath.Join(sub, "denylist.txt")); err != nil {
				return "", nil, err
			}
			a, err := testenv.StartAgentg(testenv.AgentgConfig{
				Binary: agentgBin, Dir: sub, Policy: bench.DNSPolicy(up.Addr, log),
				Args: []string{"--reload-interval", "0"}, Stderr: os.Stderr, StartTimeout: 3 * time.Minute,
			})
			if err != nil {
				return "", nil, err
			}
			if len(a.DNS) == 0 {
				a.Kill()
				return "", nil, fmt.Errorf("agentg reports no DNS listener")
			}
			return a.DNS[0], a.Kill, nil
		}
	}
	targets := []target{
		{name: "direct (upstream)", addr: up.Addr},
		{name: "dnsmasq 2.90", start: func() (string, func(), error) { return bench.StartDnsmasq(dir, up.Addr) }},
		{name: "agentg, events off", start: agentg("none")},
		{name: "agentg, every query logged to a file", start: agentg("all")},
	}
	ctx := context.Background()
	var rows []row
	for _, t := range targets {
		r := row{target: t.name}
		addr := t.addr
		if t.start != nil {
			fmt.Fprintf(os.Stderr, "starting %s (loads the denylist)\n", t.name)
			a, stop, err := t.start()
			if err != nil {
				r.err = err
				rows = append(rows, r)
				continue
			}
			addr = a
			func() {
				defer stop()
				r = measure(ctx, t.name, addr, dir, seconds)
			}()
		} else {
			r = measure(ctx, t.name, addr, dir, seconds)
		}
		rows = append(rows, r)
	}

	fmt.Printf("\n| target | cached q/s | cached latency | blocked q/s | uncached q/s | uncached latency | lost |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("| %s | %v | | | | | |\n", r.target, r.err)
			continue
		}
		fmt.Printf("| %s | %.0f | %.3f ms | %.0f | %.0f | %.3f ms | %d / %d / %d |\n", r.target,
			r.cached.QPS, r.cached.LatencyMS, r.blocked.QPS, r.uncach.QPS, r.uncach.LatencyMS,
			r.cached.Lost, r.blocked.Lost, r.uncach.Lost)
	}
	if len(rows) == 4 && rows[1].err == nil && rows[1].cached.QPS > 0 {
		fmt.Printf("\nagentg/dnsmasq, cached: events off %.2f (target ≥ 1.00), logged %.2f (target ≥ 0.70)\n",
			rows[2].cached.QPS/rows[1].cached.QPS, rows[3].cached.QPS/rows[1].cached.QPS)
	}

	heap, est, err := bench.DNSCacheMemory(up.Addr, memNames)
	if err != nil {
		return err
	}
	fmt.Printf("\ncache memory at %d names: %.1f MiB of Go heap (%.0f bytes a name); the cache's own estimate %.1f MiB\n",
		memNames, float64(heap)/(1<<20), float64(heap)/float64(memNames), float64(est)/(1<<20))
	return nil
}

// row is one target's results.
type row struct {
	target                  string
	cached, blocked, uncach bench.DNSPerfResult
	err                     error
}

func measure(ctx context.Context, name, addr, dir string, seconds int) row {
	r := row{target: name}
	fmt.Fprintf(os.Stderr, "%s on %s\n", name, addr)
	// Warm the cache with one pass over the cached names, then measure.
	if _, err := bench.DNSPerf(ctx, addr, filepath.Join(dir, "cached.txt"), 0); err != nil {
		r.err = err
		return r
	}
	if r.cached, r.err = bench.DNSPerf(ctx, addr, filepath.Join(dir, "cached.txt"), seconds); r.err != nil {
		return r
	}
	if r.blocked, r.err = bench.DNSPerf(ctx, addr, filepath.Join(dir, "blocked.txt"), seconds); r.err != nil {
		return r
	}
	r.uncach, r.err = bench.DNSPerf(ctx, addr, filepath.Join(dir, "uncached.txt"), 0)
	return r
}
