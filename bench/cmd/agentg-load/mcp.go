package main

// The mcp scenario: tools/call round trips direct, through an agentg that
// only intercepts, and through one that dissects under an mcp: section
// (bench/mcp.go), in both response framings; then the slow tool's
// first-event latency and agentg's memory per open SSE stream.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/agentg/agentg/bench"
)

// mcpStreams and mcpEvents size the stream-memory measurement; mcpFirst
// is the number of first-event samples per mode.
const (
	mcpStreams = 200
	mcpEvents  = 20
	mcpFirst   = 20
)

type mcpReport struct {
	Date        string               `json:"date"`
	Agentg      string               `json:"agentg"`
	Duration    string               `json:"duration"`
	Warmup      string               `json:"warmup"`
	Concurrency int                  `json:"concurrency"`
	Runs        int                  `json:"runs"`
	Sets        []bench.MCPSet       `json:"sets"`
	FirstEvent  []bench.FirstEvent   `json:"first_event"`
	Memory      []bench.StreamMemory `json:"stream_memory"`
	Notes       []string             `json:"notes,omitempty"`
}

func runMCP(cfg bench.MCPConfig, o bench.Options, runs int, asJSON bool, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "agentg-load: mcp: starting the MCP servers and two agentg processes")
	env, err := bench.StartMCP(cfg)
	if err != nil {
		return err
	}
	defer env.Close()
	rep := &mcpReport{Date: time.Now().UTC().Format(time.RFC3339), Agentg: agentgVersion(env.Governed.Binary),
		Duration: o.Duration.String(), Warmup: o.Warmup.String(), Concurrency: o.Concurrency, Runs: runs}
	for _, f := range bench.MCPFramings {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := env.CheckMCPPolicy(ctx, f)
		cancel()
		if err != nil {
			return fmt.Errorf("mcp %v: the policies do not do what the modes claim: %w", f, err)
		}
		set := env.RunMCPSet(f, o, runs, func(round int, r bench.Result) {
			fmt.Fprintf(stderr, "  %-20s round %d/%d %-10s %s req/s, p50 %s, p99 %s, %d errors\n", r.Scenario, round+1, runs, r.Mode,
				thousands(r.ReqPerSec), dur(r.P50), dur(r.P99), r.Errors)
		})
		rep.Sets = append(rep.Sets, set)
	}
	for _, m := range bench.MCPModes {
		fe := env.MeasureFirstEvent(m, mcpFirst)
		fmt.Fprintf(stderr, "  first event %-10s p50 %s, max %s, %d errors\n", m, dur(fe.P50), dur(fe.Max), fe.Errors)
		rep.FirstEvent = append(rep.FirstEvent, fe)
	}
	for _, m := range bench.MCPModes[1:] {
		sm, err := env.MeasureStreamMemory(m, mcpStreams, mcpEvents)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("stream memory %s: %v", m, err))
			continue
		}
		fmt.Fprintf(stderr, "  stream memory %-10s %d KiB per stream\n", m, sm.PerStream()>>10)
		rep.Memory = append(rep.Memory, sm)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.markdown(stdout)
	return nil
}

func (r *mcpReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n### MCP\n\n%s, %s. %d rounds of direct, intercept, mcp-policy in turn; medians. %s after %s warm-up, %d sessions (one connection each), `tools/call` of echo.\n\n",
		r.Date, r.Agentg, r.Runs, r.Duration, r.Warmup, r.Concurrency)
	fmt.Fprintln(w, "| framing | mcp-policy/intercept req/s | target | added p50 | target | intercept/direct | mcp-policy/direct | rounds (req/s ratio) | rounds (added p50) | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Sets {
		verdict := "missed"
		if s.Met() {
			verdict = "met"
		}
		var rr, rp string
		for i := range s.RoundRatios {
			if i > 0 {
				rr, rp = rr+" ", rp+" "
			}
			rr += fmt.Sprintf("%.2f", s.RoundRatios[i])
			rp += signedDur(s.RoundAddedP50[i])
		}
		fmt.Fprintf(w, "| %s | **%.2f** | ≥ %.2f | **%s** | < %s | %.2f | %.2f | %s | %s | %s |\n", s.Framing, s.GovernedOverIntercept, bench.MCPTargetRatio,
			signedDur(s.AddedP50), dur(bench.MCPTargetAddedP50), s.InterceptOverDirect, s.GovernedOverDirect, rr, rp, verdict)
	}
	fmt.Fprintln(w, "\n| framing | mode | req/s | p50 | p99 | agentg CPU | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, s := range r.Sets {
		for _, m := range bench.MCPModes {
			res := s.Median[m]
			c := "—"
			if res.ProxyCPU > 0 {
				c = fmt.Sprintf("%.0f µs/call", float64(res.ProxyCPUPerRequest())/float64(time.Microsecond))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d |\n", s.Framing, m, thousands(res.ReqPerSec), dur(res.P50), dur(res.P99), c, res.Errors)
		}
	}
	fmt.Fprintln(w, "\nFirst event of the slow tool (SSE), from sending the call to reading its progress event:")
	fmt.Fprintln(w, "\n| mode | samples | p50 | max | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, fe := range r.FirstEvent {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %d |\n", fe.Mode, fe.Samples, dur(fe.P50), dur(fe.Max), fe.Errors)
	}
	fmt.Fprintln(w, "\nagentg's RSS around open SSE GET streams (each on its own session, connection and intercepted tunnel):")
	fmt.Fprintln(w, "\n| mode | streams | RSS before | sessions open | streams open | after events | per stream | per session + stream | growth per stream after events | events delivered |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, sm := range r.Memory {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %d (%d per stream sent) |\n", sm.Mode, sm.Streams,
			sizeString(sm.Base), sizeString(sm.Open), sizeString(sm.Streams0), sizeString(sm.After),
			kib(sm.PerStream()), kib(sm.PerSession()), kib(sm.GrowthPerStream()), sm.Delivered, sm.Events)
	}
	for _, s := range r.Sets {
		for _, m := range bench.MCPModes {
			for i, res := range s.Runs[m] {
				if res.Errors > 0 {
					fmt.Fprintf(w, "\n%s %s round %d: %d errors, first: %s\n", s.Framing, m, i+1, res.Errors, res.FirstError)
				}
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "\n"+n)
	}
}

func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

func signedDur(d time.Duration) string {
	if d < 0 {
		return "−" + dur(-d)
	}
	return "+" + dur(d)
}
