package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/agentg/agentg/bench"
)

// runCreds runs the credentials bench (bench/creds.go) and prints its
// table: injection and the leak guard, in agentg CPU per request.
func runCreds(cfg bench.Config, o bench.Options, runs int, asJSON bool, stdout, stderr io.Writer) error {
	fmt.Fprintf(stderr, "agentg-load: credentials bench: two agentg processes, %d rounds\n", runs)
	rep, err := bench.RunCreds(cfg, o, runs)
	if err != nil {
		return fmt.Errorf("credentials bench: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "\n## Credentials (intercepted keep-alive, concurrency %d, %d rounds; agentg CPU per request)\n\n", o.Concurrency, rep.Rounds)
	fmt.Fprintln(stdout, "| workload | agentg CPU/req | req/s | p50 | figure | target | met |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|")
	row := func(name string, r bench.Result, figure, target string, met bool) {
		m := ""
		if target != "" {
			m = map[bool]string{true: "yes", false: "**no**"}[met]
		}
		fmt.Fprintf(stdout, "| %s | %s | %.0f | %s | %s | %s | %s |\n", name, dur(r.ProxyCPUPerRequest()), r.ReqPerSec, dur(r.P50), figure, target, m)
	}
	row("GET, no binding matches (100 secrets held)", rep.NoBinding, "", "", false)
	row("GET, binding sets Authorization", rep.Binding, fmt.Sprintf("%.3f× CPU", rep.InjectCPU), "< 1.05×", rep.InjectCPU < 1.05)
	row(fmt.Sprintf("POST %d KiB, no credentials", bench.CredsBody>>10), rep.Plain, "", "", false)
	row(fmt.Sprintf("POST %d KiB, %d secrets held (leak guard)", bench.CredsBody>>10, bench.CredsSecrets), rep.Guarded,
		"+"+dur(rep.GuardAdded), "< +10µs", rep.GuardAdded < 10e3)
	fmt.Fprintf(stdout, "\nPer round: injection %v; leak guard %v\n", ratios(rep.InjectRuns), rep.GuardRuns)
	return nil
}

func ratios(rs []float64) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%.3f", r)
	}
	return out
}
