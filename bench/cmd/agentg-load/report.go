package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/agentg/agentg/bench"
)

// report collects the runs and prints them as Markdown or JSON.
type report struct {
	Date        string      `json:"date"`
	Host        string      `json:"host"`
	GoVersion   string      `json:"go"`
	CPUs        int         `json:"cpus"`
	Agentg      string      `json:"agentg"` // version and commit of the binary measured
	Squid       string      `json:"squid"`  // version and what it does, or why it is not measured
	Duration    string      `json:"duration"`
	Warmup      string      `json:"warmup"`
	Concurrency int         `json:"concurrency"`
	Size        int64       `json:"size"`
	Runs        int         `json:"runs"`
	Sets        []bench.Set `json:"sets"`
	// What the proxies logged over the whole run.
	AgentgEvents bench.Events `json:"agentg_events"`
	SquidEvents  bench.Events `json:"squid_events"`
	AgentgLog    int64        `json:"agentg_log_bytes"`
	SquidLog     int64        `json:"squid_log_bytes"`
}

func newReport(env *bench.Env, bin string, d, warm time.Duration, conc int, size int64, runs int) *report {
	host, _ := os.Hostname()
	r := &report{
		Date: time.Now().UTC().Format(time.RFC3339), Host: host, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Agentg:   agentgVersion(env.Agentg.Binary),
		Duration: d.String(), Warmup: warm.String(), Concurrency: conc, Size: size, Runs: runs,
	}
	switch {
	case env.Squid == nil:
		r.Squid = "not measured: " + env.SquidNote
	case env.Squid.Bump:
		r.Squid = "Squid " + env.Squid.Info.Version + ", ssl-bump for the intercepted host, access log to a file, no cache, workers 1"
	default:
		r.Squid = "Squid " + env.Squid.Info.Version + " without ssl-bump (" + env.SquidNote + "), access log to a file, no cache, workers 1"
	}
	return r
}

// agentgVersion is what `agentg version` says, with the commit the binary
// was built from (go build records it) and whether the tree had changes.
func agentgVersion(bin string) string {
	v := "agentg"
	if out, err := exec.Command(bin, "version").Output(); err == nil {
		v = strings.TrimSpace(string(out))
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		v += " (commit " + rev[:min(12, len(rev))]
		if modified == "true" {
			v += ", with uncommitted changes"
		}
		v += ")"
	}
	return v
}

func (r *report) add(s bench.Set) { r.Sets = append(r.Sets, s) }

func (r *report) finish(env *bench.Env) {
	r.AgentgEvents = env.Events(bench.Agentg)
	r.AgentgLog = fileSize(env.Agentg.LogFile)
	if env.Squid != nil {
		r.SquidEvents = env.Events(bench.Squid)
		r.SquidLog = fileSize(env.Squid.AccessLog)
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (r *report) json(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// markdown prints the run: what was measured, a summary of ratios against
// the targets, and every mode's median run.
func (r *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "%s, `%s`: %d CPUs, %s. %s, own process, `--log-file`. %s.\n", r.Date, r.Host, r.CPUs, r.GoVersion, r.Agentg, r.Squid)
	fmt.Fprintf(w, "%d rounds of direct, agentg, squid in turn; medians. Keep-alive runs: %s after %s warm-up, %d clients. Large: one GET of %s.\n\n",
		r.Runs, r.Duration, r.Warmup, r.Concurrency, sizeString(r.Size))

	fmt.Fprintln(w, "| scenario | agentg/direct | target | | squid/direct | Squid 5.7 reference | agentg rounds | squid rounds |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	met := 0
	for _, s := range r.Sets {
		ag, sq := ratioOf(s, bench.Agentg), ratioOf(s, bench.Squid)
		verdict := "missed"
		if ag != nil && ag.Met {
			verdict = "met"
			met++
		}
		ref := "—"
		if s.Scenario.SquidRef > 0 {
			ref = fmt.Sprintf("%.2f", s.Scenario.SquidRef)
		}
		fmt.Fprintf(w, "| %s | **%s** %s | ≥ %.2f | %s | %s | %s | %s | %s |\n", s.Scenario.Name,
			judged(ag), s.Scenario.Metric, s.Scenario.Target, verdict, judged(sq), ref, rounds(ag), rounds(sq))
	}
	fmt.Fprintf(w, "\nagentg met %d of %d targets.\n\n", met, len(r.Sets))

	fmt.Fprintln(w, "| scenario | mode | req/s | MB/s | p50 | p99 | /direct | proxy CPU | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Sets {
		row := func(res bench.Result, ratio *bench.Ratio) {
			rel := "—"
			if ratio != nil {
				rel = fmt.Sprintf("%.2f (p50 ×%.1f)", ratio.Judged(), ratio.P50)
			}
			rps := thousands(res.ReqPerSec)
			if s.Scenario.Large {
				rps = "—" // one request
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s | %s | %s | %s | %d |\n", s.Scenario.Name, res.Mode,
				rps, res.MBPerSec, dur(res.P50), dur(res.P99), rel, cpu(s.Scenario, res), res.Errors)
		}
		row(s.Direct, nil)
		for i, p := range s.Proxied {
			row(p, &s.Ratios[i])
		}
	}

	fmt.Fprintf(w, "\nagentg's log: %d http events (%d intercepted), %d connect (%d intercepted), %s.",
		r.AgentgEvents.HTTP, r.AgentgEvents.InterceptedHTTP, r.AgentgEvents.Connect, r.AgentgEvents.InterceptedConnect, sizeString(r.AgentgLog))
	if r.SquidLog > 0 {
		fmt.Fprintf(w, " Squid's access log: %d requests (%d bumped https), %d CONNECT, %s.",
			r.SquidEvents.HTTP, r.SquidEvents.InterceptedHTTP, r.SquidEvents.Connect, sizeString(r.SquidLog))
	}
	fmt.Fprintln(w)
	for _, s := range r.Sets {
		for _, res := range append([]bench.Result{s.Direct}, s.Proxied...) {
			if res.Errors > 0 {
				fmt.Fprintf(w, "\n%s %s: %d errors, first: %s", s.Scenario.Name, res.Mode, res.Errors, res.FirstError)
			}
		}
	}
}

func ratioOf(s bench.Set, m bench.Mode) *bench.Ratio {
	for i := range s.Ratios {
		if s.Ratios[i].Mode == m {
			return &s.Ratios[i]
		}
	}
	return nil
}

func judged(r *bench.Ratio) string {
	if r == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", r.Judged())
}

func rounds(r *bench.Ratio) string {
	if r == nil {
		return "—"
	}
	var b strings.Builder
	for i, x := range r.Runs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.2f", x)
	}
	return b.String()
}

// figure is the run's judged figure with its unit.
func figure(sc bench.Scenario, r bench.Result) string {
	if sc.Metric == "MB/s" {
		return fmt.Sprintf("%.0f MB/s", r.MBPerSec)
	}
	return thousands(r.ReqPerSec) + " req/s"
}

// cpu is the proxy's CPU per request (per GB for a large transfer).
func cpu(sc bench.Scenario, r bench.Result) string {
	switch {
	case r.ProxyCPU == 0:
		return "—"
	case sc.Large:
		return fmt.Sprintf("%.2f s/GB", r.ProxyCPUPerGB().Seconds())
	default:
		return fmt.Sprintf("%.0f µs/req", float64(r.ProxyCPUPerRequest())/float64(time.Microsecond))
	}
}

// thousands prints 46070.3 as "46 070".
func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
