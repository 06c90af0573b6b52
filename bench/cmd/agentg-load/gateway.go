package main

// The gateway scenario (issue 17): tools/call of echo direct, through the
// proxy with interception (with and without an mcp: section) and through
// agentg's MCP gateway door, in both of the servers' framings, at
// concurrency 1 and -concurrency; tools/list over ten servers of a
// hundred tools; agentg's memory per idle client session (bench/gateway.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentg/agentg/bench"
)

// Sizes of the list and memory measurements.
const (
	gatewayLists         = 200 // listings on one session
	gatewayFirstLists    = 10  // new sessions' first listings
	gatewaySessions      = 1000
	gatewayListedSession = 50
)

type gatewayReport struct {
	Date        string              `json:"date"`
	Agentg      string              `json:"agentg"`
	Duration    string              `json:"duration"`
	Warmup      string              `json:"warmup"`
	Concurrency []int               `json:"concurrency"`
	Runs        int                 `json:"runs"`
	Sets        []bench.GatewaySet  `json:"sets"`
	List        bench.ListResult    `json:"tools_list"`
	Memory      bench.SessionMemory `json:"session_memory"`
	Notes       []string            `json:"notes,omitempty"`
}

func runGateway(cfg bench.MCPConfig, o bench.Options, runs int, asJSON bool, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "agentg-load: gateway: starting the MCP servers and four agentg processes")
	env, err := bench.StartGateway(cfg)
	if err != nil {
		return err
	}
	defer env.Close()
	// Ctrl-C stops the agentg processes and removes the files first.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			env.Close()
			os.Exit(130)
		}
	}()
	concs := []int{1}
	if o.Concurrency > 1 {
		concs = append(concs, o.Concurrency)
	}
	rep := &gatewayReport{Date: time.Now().UTC().Format(time.RFC3339), Agentg: agentgVersion(env.Gateway.Binary),
		Duration: o.Duration.String(), Warmup: o.Warmup.String(), Concurrency: concs, Runs: runs}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = env.CheckGatewayPolicy(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("gateway: the policy does not do what the mode claims: %w", err)
	}
	for _, f := range bench.MCPFramings {
		for _, c := range concs {
			oc := o
			oc.Concurrency = c
			set := env.RunGatewaySet(f, oc, runs, func(round int, r bench.Result) {
				fmt.Fprintf(stderr, "  %-20s c=%-3d round %d/%d %-10s %s req/s, p50 %s, p99 %s, %d errors\n", r.Scenario, c, round+1, runs, r.Mode,
					thousands(r.ReqPerSec), dur(r.P50), dur(r.P99), r.Errors)
			})
			rep.Sets = append(rep.Sets, set)
		}
	}
	rep.List = env.MeasureList(gatewayLists, gatewayFirstLists)
	fmt.Fprintf(stderr, "  tools/list %d servers: %d tools, p50 %s, p99 %s, first %s, %d errors\n", rep.List.Servers, rep.List.Tools,
		dur(rep.List.P50), dur(rep.List.P99), dur(rep.List.FirstP50), rep.List.Errors)
	if rep.Memory, err = env.MeasureSessionMemory(gatewaySessions, gatewayListedSession); err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("session memory: %v", err))
	}
	fmt.Fprintf(stderr, "  memory: %s per idle session, %s per session that listed\n", kib(rep.Memory.PerSession()), kib(rep.Memory.PerListedSession()))
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.markdown(stdout)
	return nil
}

func (r *gatewayReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n### Gateway\n\n%s, %s. %d rounds of direct, intercept, mcp-policy, gateway in turn; medians. %s after %s warm-up per run, one session (and connection) per client, `tools/call` of echo. The framing is the server's; the gateway answers its clients in SSE.\n\n",
		r.Date, r.Agentg, r.Runs, r.Duration, r.Warmup)
	fmt.Fprintln(w, "| framing | c | gateway/direct req/s | target | gateway added p50 | target | intercept/direct | mcp-policy/direct | rounds (req/s ratio) | rounds (added p50) | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Sets {
		verdict := "missed"
		if s.Met() {
			verdict = "met"
		}
		target := "—"
		if s.Concurrency >= 16 {
			target = fmt.Sprintf("≥ %.2f", bench.GatewayTargetRatio)
		}
		var rr, rp string
		for i := range s.RoundRatios {
			if i > 0 {
				rr, rp = rr+" ", rp+" "
			}
			rr += fmt.Sprintf("%.2f", s.RoundRatios[i])
			rp += signedDur(s.RoundAddedP50[i])
		}
		d := s.Median[bench.Direct]
		fmt.Fprintf(w, "| %s | %d | **%.2f** | %s | **%s** | < %s | %.2f | %.2f | %s | %s | %s |\n", s.Framing, s.Concurrency, s.GatewayOverDirect, target,
			signedDur(s.AddedP50), dur(bench.GatewayTargetAddedP50),
			ratio(s.Median[bench.MCPIntercept].ReqPerSec, d.ReqPerSec), ratio(s.Median[bench.MCPGoverned].ReqPerSec, d.ReqPerSec), rr, rp, verdict)
	}
	fmt.Fprintln(w, "\n| framing | c | mode | req/s | p50 | p99 | agentg CPU | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, s := range r.Sets {
		for _, m := range bench.GatewayModes {
			res := s.Median[m]
			c := "—"
			if res.ProxyCPU > 0 {
				c = fmt.Sprintf("%.0f µs/call", float64(res.ProxyCPUPerRequest())/float64(time.Microsecond))
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %d |\n", s.Framing, s.Concurrency, m, thousands(res.ReqPerSec), dur(res.P50), dur(res.P99), c, res.Errors)
		}
	}
	l := r.List
	verdict := "missed"
	if l.Met() {
		verdict = "met"
	}
	fmt.Fprintf(w, "\n`tools/list` through the gateway, %d servers of %d tools, every page, one session (%d listings after its first):\n\n", l.Servers, bench.GatewayListTools, l.Samples)
	fmt.Fprintln(w, "| tools | p50 | target | p99 | a new session's first listing (p50) | agentg CPU | errors | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %d | **%s** | < %s | %s | %s | %.0f µs/list | %d | %s |\n", l.Tools, dur(l.P50), dur(bench.GatewayTargetListP50), dur(l.P99), dur(l.FirstP50),
		float64(l.CPU)/float64(time.Microsecond), l.Errors, verdict)
	m := r.Memory
	fmt.Fprintln(w, "\nagentg's RSS around client sessions of the gateway (initialized, then idle; one shared keep-alive client):")
	fmt.Fprintln(w, "\n| sessions | RSS before | RSS with them open | per idle session | sessions that listed the 1000 tools | per such session |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %d | %s | %s | **%s** | %d | %s |\n", m.Sessions, sizeString(m.Base), sizeString(m.Open), kib(m.PerSession()), m.ListedSessions, kib(m.PerListedSession()))
	for _, s := range r.Sets {
		for _, md := range bench.GatewayModes {
			for i, res := range s.Runs[md] {
				if res.Errors > 0 {
					fmt.Fprintf(w, "\n%s c=%d %s round %d: %d errors, first: %s\n", s.Framing, s.Concurrency, md, i+1, res.Errors, res.FirstError)
				}
			}
		}
	}
	if l.First != "" {
		fmt.Fprintln(w, "\ntools/list: first error:", l.First)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "\n"+n)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
