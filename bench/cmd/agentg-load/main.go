// Command agentg-load measures what agentg costs on the wire, beside Squid.
//
// It starts, on loopback: a plain HTTP origin and an HTTPS origin (a leaf
// from a test CA generated at start); agentg as its own process, the way
// users run it (`agentg serve --config policy.yaml --log-file FILE`, built
// from this module unless -agentg names a binary); and, when installed,
// Squid (`squid -N` with a generated configuration: ssl-bump for the
// intercepted host when Squid was built with OpenSSL, no cache, access log
// to a file, one worker). Then it runs each scenario in rounds of direct,
// through agentg, through Squid, -runs rounds, so that drift on the shared
// machine hits every mode alike, and prints each mode's median run and its
// ratio to direct, against agentg's targets:
//
//	http                 plain HTTP keep-alive GETs (absolute-form)    target ≥ 0.40 req/s
//	connect              HTTPS keep-alive over a CONNECT tunnel        target ≥ 0.60 req/s
//	large                one HTTPS GET of -size bytes over a tunnel    target ≥ 0.90 MB/s
//	intercept-keepalive  TLS terminated by the proxy, keep-alive       target ≥ 0.40 req/s
//	intercept-newconn    same, a new connection per request            target ≥ 0.70 req/s
//	mcp                  MCP tools/call (not run unless named):        target mcp-policy/intercept ≥ 0.85 req/s, +p50 < 50µs
//	creds                credentials (not run unless named):          target injection < +5% agentg CPU/req, leak guard < +10µs/req
//	gateway              MCP gateway door (not run unless named):     target +p50 < 100µs over direct, ≥ 0.80 of direct's req/s at c=16,
//	                     tools/list of 10×100 tools p50 < 5ms; memory per idle client session
//	llm                  model calls (not run unless named):          target llm section adds < 1ms TTFT p50, < 5% to a 100 KiB answer
//
// Reading the ratios: agentg/direct req/s = 0.62 means the run through
// agentg did 62% of the requests per second of the direct run; for latency
// the ratio is the proxy's p50 (p99) over direct's. Clients, origins and
// proxy share the machine's cores, so compare ratios, not absolute numbers,
// across machines. The output is Markdown, to paste into bench/README.md.
// Every run stops by itself (time and count limits); with the defaults the
// whole run takes about three minutes.
//
// Usage:
//
//	go run ./bench/cmd/agentg-load [-duration 2s] [-warmup 300ms] [-concurrency 16]
//	    [-size 512MiB] [-runs 5] [-scenarios http,connect,large,intercept-keepalive,intercept-newconn,mcp]
//	    [-squid=true] [-require-squid] [-agentg BIN] [-keep] [-json] [-print-policy] [-transparent]
//
// With -transparent (root) the same scenarios run across network
// namespaces instead: clients in an agent namespace, agentg in a router
// namespace, origins in an upstream namespace; direct (routed, no
// redirect), through agentg's explicit listener, and through its
// transparent listener by the redirect agentg netsetup installs, with
// transparent's figures judged against explicit's (target ≥ 0.90).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentg/agentg/bench"
	"github.com/agentg/agentg/internal/testenv"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	testenv.RemoveAgentgBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentg-load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("agentg-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 2*time.Second, "measured time of each keep-alive run")
	warmup := fs.Duration("warmup", 300*time.Millisecond, "unmeasured time before each keep-alive run")
	conc := fs.Int("concurrency", 16, "concurrent clients in the keep-alive scenarios")
	runs := fs.Int("runs", 5, "rounds per scenario (direct, agentg, squid in turn); the median run of each mode is compared")
	sizeFlag := fs.String("size", "512MiB", "body of the large scenario (bytes, or with KiB/MiB/GiB/KB/MB/GB)")
	var names []string
	for _, sc := range bench.Scenarios {
		names = append(names, sc.Name)
	}
	scen := fs.String("scenarios", strings.Join(names, ","), "comma-separated scenarios to run (add mcp for the MCP benchmark, creds for the credentials one, gateway for the MCP gateway's, llm for the model-call one)")
	squid := fs.Bool("squid", true, "measure Squid too when it is installed")
	requireSquid := fs.Bool("require-squid", false, "fail when Squid is missing or cannot ssl-bump")
	agentgBin := fs.String("agentg", "", "agentg binary to measure (default: go build ./cmd/agentg)")
	keep := fs.Bool("keep", false, "keep the run's directory (policy, agentg's log, Squid's config and logs) and print its path")
	asJSON := fs.Bool("json", false, "print one JSON document instead of Markdown")
	printPolicy := fs.Bool("print-policy", false, "print the policy agentg runs with, and exit")
	transparent := fs.Bool("transparent", false, "run the scenarios across network namespaces (root): direct, through agentg's explicit listener and through its transparent listener, transparent judged against explicit (no Squid, no mcp)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printPolicy {
		p := bench.Policy
		if *transparent {
			p = bench.NetnsPolicy
		}
		_, err := io.WriteString(stdout, p)
		return err
	}
	if *runs < 1 || *runs > 20 || *conc < 1 || *conc > 1024 || *duration <= 0 || *duration > 5*time.Minute {
		return fmt.Errorf("want 1 ≤ -runs ≤ 20, 1 ≤ -concurrency ≤ 1024, 0 < -duration ≤ 5m")
	}
	size, err := parseSize(*sizeFlag)
	if err != nil {
		return err
	}
	var scs []bench.Scenario
	withMCP, withCreds, withGateway, withLLM := false, false, false, false
	for name := range strings.SplitSeq(*scen, ",") {
		switch strings.TrimSpace(name) {
		case "gateway":
			withGateway = true // runs on its own, on its own servers and agentg processes (gateway.go)
			continue
		case "mcp":
			withMCP = true // runs after the others, on its own servers (mcp.go)
			continue
		case "creds":
			withCreds = true // runs last, on its own agentg processes (creds.go)
			continue
		case "llm":
			withLLM = true // runs last, on its own agentg processes and provider (llm.go)
			continue
		}
		sc, ok := bench.ScenarioByName(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		scs = append(scs, sc)
	}

	opts := bench.Options{Duration: *duration, Warmup: *warmup, Concurrency: *conc, Size: size}
	if withGateway {
		if *transparent || withMCP || withCreds || withLLM || len(scs) > 0 {
			return fmt.Errorf("run the gateway scenario on its own: -scenarios gateway")
		}
		return runGateway(bench.MCPConfig{Agentg: *agentgBin, Keep: *keep, Stderr: stderr}, opts, *runs, *asJSON, stdout, stderr)
	}
	if *transparent {
		if withMCP {
			return fmt.Errorf("-transparent runs the HTTP scenarios only, not mcp")
		}
		return runTransparent(bench.NetnsConfig{Agentg: *agentgBin, Keep: *keep, Stderr: stderr}, scs, opts, *runs, *asJSON, stdout, stderr)
	}
	if withLLM {
		if *asJSON && (len(scs) > 0 || withMCP || withCreds) {
			return fmt.Errorf("-json prints one document: run llm on its own")
		}
		defer func() {
			if err == nil {
				err = runLLM(bench.Config{Agentg: *agentgBin, Keep: *keep, Stderr: stderr}, opts, *runs, *asJSON, stdout, stderr)
			}
		}()
		if len(scs) == 0 && !withMCP && !withCreds {
			return nil
		}
	}
	if withCreds {
		if *asJSON && (len(scs) > 0 || withMCP) {
			return fmt.Errorf("-json prints one document: run creds on its own")
		}
		defer func() {
			if err == nil {
				err = runCreds(bench.Config{Agentg: *agentgBin, Keep: *keep, Stderr: stderr}, opts, *runs, *asJSON, stdout, stderr)
			}
		}()
		if len(scs) == 0 && !withMCP {
			return nil
		}
	}
	if len(scs) == 0 && withMCP {
		return runMCP(bench.MCPConfig{Agentg: *agentgBin, Keep: *keep, Stderr: stderr}, opts, *runs, *asJSON, stdout, stderr)
	}
	fmt.Fprintln(stderr, "agentg-load: building and starting agentg"+map[bool]string{true: " and Squid", false: ""}[*squid])
	env, err := bench.Start(bench.Config{Agentg: *agentgBin, Squid: *squid || *requireSquid, SquidRequired: *requireSquid, Keep: *keep, Stderr: stderr})
	if err != nil {
		return err
	}
	defer env.Close()
	// Ctrl-C stops the proxies and removes the files before exiting.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		env.Close()
		os.Exit(130)
	}()

	rep := newReport(env, *agentgBin, *duration, *warmup, *conc, size, *runs)
	for _, sc := range scs {
		set := env.RunSet(sc, opts, *runs, func(round int, r bench.Result) {
			fmt.Fprintf(stderr, "  %-20s round %d/%d %-6s %s\n", sc.Name, round+1, *runs, r.Mode, progressLine(sc, r))
		})
		rep.add(set)
	}
	// The proxies flush their logs as they stop: count their events after.
	if err := env.Shutdown(); err != nil {
		fmt.Fprintln(stderr, "agentg-load: stopping the proxies:", err)
	}
	rep.finish(env)
	if *keep {
		fmt.Fprintln(stderr, "agentg-load: files kept in", env.Dir)
	}
	if *asJSON && !withMCP {
		return rep.json(stdout)
	}
	if *asJSON {
		if err := rep.json(stdout); err != nil {
			return err
		}
	} else {
		rep.markdown(stdout)
	}
	if withMCP {
		return runMCP(bench.MCPConfig{Agentg: *agentgBin, Keep: *keep, Stderr: stderr}, opts, *runs, *asJSON, stdout, stderr)
	}
	return nil
}

func progressLine(sc bench.Scenario, r bench.Result) string {
	s := fmt.Sprintf("%s, p50 %s, p99 %s", figure(sc, r), dur(r.P50), dur(r.P99))
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d errors (first: %s)", r.Errors, r.FirstError)
	}
	return s
}

// parseSize reads 1073741824, 1GiB, 64MiB, 100MB, 512KiB.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	in, mult := s, int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n > (64<<30)/mult {
		return 0, fmt.Errorf("bad -size %q (1 byte to 64 GiB)", in)
	}
	return n * mult, nil
}
