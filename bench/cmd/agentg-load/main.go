// Command agentg-load measures what agentg costs on the wire.
//
// It starts, on loopback and in this process, a plain HTTP origin, an HTTPS
// origin (self-signed certificate generated at start, trusted by the
// clients) and an agentg proxy (proxy.New with a fresh CA in a temporary
// directory, audit events to io.Discard unless -log is given), then runs
// each scenario direct to the origin and through agentg. For every run it
// prints requests/s, p50 and p99 latency and MB/s of body, and for every
// scenario agentg's figures as a ratio of direct, against the scenario's
// target. Each scenario runs -runs rounds (direct, then each proxied
// mode), interleaved, and compares the median run of each mode (the
// machine is shared; single runs are noisy); the ratio of each round is
// printed too:
//
//	http             plain HTTP keep-alive, -concurrency clients, -duration;
//	                 through agentg as absolute-form requests     target req/s ≥ 0.35
//	connect          HTTPS keep-alive over reused CONNECT tunnels target req/s ≥ 0.50
//	https-keepalive  HTTPS keep-alive, direct vs plain tunnel vs intercepted tunnel
//	                                                 target intercepted req/s ≥ 0.40
//	https-newconn    HTTPS, a new connection (and TLS handshake, and CONNECT)
//	                 per request, direct vs tunnel vs intercepted
//	                                                 target intercepted req/s ≥ 0.50
//	large-connect    one GET of -size bytes over a CONNECT tunnel target MB/s  ≥ 0.90
//	large-http       one plain HTTP GET of -size bytes             (no target)
//
// Reading the ratios: agentg/direct req/s = 0.62 means the proxied run did
// 62% of the requests per second of the direct run; for latency the ratio
// is agentg's p50 (p99) over direct's, so 1.6 means 60% slower. Client,
// proxy and origins share the machine's cores, so compare ratios, not
// absolute numbers, across machines.
//
// With -proxy http://127.0.0.1:3128 the proxied runs go through an external
// agentg instead (start it with the policy -print-policy writes, e.g.
// agentg serve --config policy.yaml --log-file /tmp/agentg.log). The
// intercepted mode needs the in-process agentg (its CA, and its trust in
// the harness's origin) and is skipped with -proxy.
//
// Usage:
//
//	go run ./bench/cmd/agentg-load [-duration 5s] [-concurrency 16] [-size 1GiB]
//	    [-runs 3] [-scenarios http,connect,https-keepalive,https-newconn,large-connect,large-http]
//	    [-modes tunnel,intercepted] [-json]
//	    [-log FILE] [-proxy URL] [-cpuprofile FILE] [-print-policy]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/agentg/agentg/bench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "agentg-load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agentg-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 5*time.Second, "measured time of each keep-alive run")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "unmeasured time before each keep-alive run")
	conc := fs.Int("concurrency", 16, "concurrent clients in the keep-alive scenarios")
	runs := fs.Int("runs", 3, "direct/agentg pairs per scenario, interleaved; the median run of each mode is compared")
	sizeFlag := fs.String("size", "1GiB", "body size of the large scenarios (bytes, or with KiB/MiB/GiB/KB/MB/GB)")
	var names []string
	for _, sc := range bench.Scenarios {
		names = append(names, sc.Name)
	}
	scen := fs.String("scenarios", strings.Join(names, ","), "comma-separated scenarios to run")
	modes := fs.String("modes", "", "comma-separated proxied modes to run (agentg, tunnel, intercepted; direct always runs); default: each scenario's")
	asJSON := fs.Bool("json", false, "print one JSON document instead of text")
	logFile := fs.String("log", "", "write the in-process agentg's audit events to this file (default: discarded, logging off)")
	proxyURL := fs.String("proxy", "", "measure an external agentg at this URL (e.g. http://127.0.0.1:3128) instead of an in-process one")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process (client, origins and in-process agentg) to FILE")
	printPolicy := fs.Bool("print-policy", false, "print the policy an external agentg needs, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printPolicy {
		_, err := io.WriteString(stdout, bench.Policy)
		return err
	}
	size, err := parseSize(*sizeFlag)
	if err != nil {
		return err
	}
	var scs []bench.Scenario
	for name := range strings.SplitSeq(*scen, ",") {
		sc, ok := bench.ScenarioByName(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		scs = append(scs, sc)
	}

	cfg := bench.Config{ProxyURL: *proxyURL}
	logging := "off (events discarded)"
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.AuditLog = f
		logging = "on, to " + *logFile
	}
	if *proxyURL != "" {
		logging = "external agentg: as configured there"
	}
	env, err := bench.Start(cfg)
	if err != nil {
		return err
	}
	defer env.Close()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	rep := newReport(env, logging, *duration, *conc, size, *runs)
	if !*asJSON {
		rep.header(stdout)
	}
	opts := bench.Options{Duration: *duration, Warmup: *warmup, Concurrency: *conc, Size: size}
	if *modes != "" {
		for m := range strings.SplitSeq(*modes, ",") {
			switch m := bench.Mode(strings.TrimSpace(m)); m {
			case bench.Agentg, bench.Tunnel, bench.Intercepted:
				opts.Modes = append(opts.Modes, m)
			default:
				return fmt.Errorf("unknown mode %q", m)
			}
		}
	}
	for _, sc := range scs {
		set := env.RunSet(sc, opts, *runs)
		rep.add(set)
		if !*asJSON {
			rep.text(stdout, sc, set)
		}
	}
	rep.finish(env)
	if *asJSON {
		return rep.json(stdout)
	}
	rep.footer(stdout)
	return nil
}

// parseSize reads 1073741824, 1GiB, 64MiB, 100MB, 512KiB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad -size %q", s)
	}
	return n * mult, nil
}
