package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/agentg/agentg/bench"
)

// report collects the runs and prints them as text or JSON.
type report struct {
	Date          string         `json:"date"`
	Host          string         `json:"host"`
	GoVersion     string         `json:"go"`
	CPUs          int            `json:"cpus"`
	GOMAXPROCS    int            `json:"gomaxprocs"`
	Proxy         string         `json:"proxy"`
	AuditLogging  string         `json:"audit_logging"`
	Duration      string         `json:"duration"`
	Concurrency   int            `json:"concurrency"`
	Size          int64          `json:"size"`
	Runs          int            `json:"runs"`
	Results       []bench.Result `json:"results"`
	Ratios        []bench.Ratio  `json:"ratios"`
	HTTPEvents    int64          `json:"audit_http_events"`
	ConnectEvents int64          `json:"audit_connect_events"`
	// Of the above, the events carrying "tls":"intercepted".
	InterceptedHTTPEvents    int64  `json:"audit_intercepted_http_events"`
	InterceptedConnectEvents int64  `json:"audit_intercepted_connect_events"`
	LeavesIssued             uint64 `json:"leaves_issued"`
}

func newReport(env *bench.Env, logging string, d time.Duration, conc int, size int64, runs int) *report {
	host, _ := os.Hostname()
	p := "in-process " + env.Proxy.String()
	if env.External {
		p = "external " + env.Proxy.String()
	}
	return &report{
		Date: time.Now().UTC().Format(time.RFC3339), Host: host, GoVersion: runtime.Version(),
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Proxy: p, AuditLogging: logging,
		Duration: d.String(), Concurrency: conc, Size: size, Runs: max(runs, 1),
	}
}

func (r *report) add(set bench.Set) {
	r.Results = append(r.Results, set.Direct)
	r.Results = append(r.Results, set.Proxied...)
	r.Ratios = append(r.Ratios, set.Ratios...)
}

func (r *report) finish(env *bench.Env) {
	if !env.External {
		time.Sleep(100 * time.Millisecond) // closed tunnels log as they wind down
		ev := env.Events()
		r.HTTPEvents, r.ConnectEvents = ev.HTTP, ev.Connect
		r.InterceptedHTTPEvents, r.InterceptedConnectEvents = ev.InterceptedHTTP, ev.InterceptedConnect
		r.LeavesIssued = env.LeavesIssued()
	}
}

func (r *report) header(w io.Writer) {
	fmt.Fprintf(w, "agentg-load  %s  %s  %d CPUs (GOMAXPROCS %d)  host %s\n", r.Date, r.GoVersion, r.CPUs, r.GOMAXPROCS, r.Host)
	fmt.Fprintf(w, "agentg: %s  audit logging: %s\n", r.Proxy, r.AuditLogging)
	fmt.Fprintf(w, "keep-alive runs: %s, %d clients, 1 KiB body; large runs: %d bytes; %d rounds per scenario (medians shown)\n\n", r.Duration, r.Concurrency, r.Size, r.Runs)
	fmt.Fprintf(w, "%-16s %-11s %10s %10s %10s %10s %9s %7s\n", "scenario", "mode", "requests", "req/s", "p50", "p99", "MB/s", "errors")
}

func (r *report) text(w io.Writer, sc bench.Scenario, set bench.Set) {
	for _, x := range append([]bench.Result{set.Direct}, set.Proxied...) {
		fmt.Fprintf(w, "%-16s %-11s %10d %10.0f %10s %10s %9.1f %7d\n", x.Scenario, x.Mode, x.Requests, x.ReqPerSec,
			round(x.P50), round(x.P99), x.MBPerSec, x.Errors)
		if x.FirstError != "" {
			fmt.Fprintf(w, "%28s first error: %s\n", "", x.FirstError)
		}
	}
	for _, ratio := range set.Ratios {
		verdict := "no target"
		if ratio.Target > 0 {
			verdict = fmt.Sprintf("target %s ≥ %.2f: ", ratio.Metric, ratio.Target)
			if ratio.Met {
				verdict += "met"
			} else {
				verdict += "MISSED"
			}
		}
		name := string(ratio.Mode) + "/direct"
		fmt.Fprintf(w, "%-16s %-18s = req/s %.2f  MB/s %.2f  p50 %.2f  p99 %.2f   (%s)\n",
			sc.Name, name, ratio.ReqPerSec, ratio.MBPerSec, ratio.P50, ratio.P99, verdict)
		if len(ratio.Runs) > 0 {
			fmt.Fprintf(w, "%-16s %-18s   each round's %s:", "", "", ratio.Metric)
			for _, x := range ratio.Runs {
				fmt.Fprintf(w, " %.2f", x)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
}

func (r *report) footer(w io.Writer) {
	if r.Proxy != "" && r.HTTPEvents+r.ConnectEvents > 0 {
		fmt.Fprintf(w, "agentg audit events: %d http, %d connect (proof the agentg runs went through the proxy)\n", r.HTTPEvents, r.ConnectEvents)
	}
	if r.InterceptedHTTPEvents+r.InterceptedConnectEvents > 0 {
		fmt.Fprintf(w, "  of which \"tls\":\"intercepted\": %d http, %d connect; leaf certificates issued: %d\n",
			r.InterceptedHTTPEvents, r.InterceptedConnectEvents, r.LeavesIssued)
	}
}

func (r *report) json(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
