package main

// -transparent: the scenarios direct, through agentg's explicit listener
// and through its transparent listener, across network namespaces
// (bench/netns.go), transparent judged against explicit.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/agentg/agentg/bench"
)

type transparentReport struct {
	Date        string                 `json:"date"`
	Host        string                 `json:"host"`
	GoVersion   string                 `json:"go"`
	CPUs        int                    `json:"cpus"`
	Agentg      string                 `json:"agentg"`
	Duration    string                 `json:"duration"`
	Warmup      string                 `json:"warmup"`
	Concurrency int                    `json:"concurrency"`
	Size        int64                  `json:"size"`
	Runs        int                    `json:"runs"`
	Sets        []bench.TransparentSet `json:"sets"`
	// agentg's decision events (http and connect) by door, over the run.
	TransparentEvents int64 `json:"transparent_events"`
	ExplicitEvents    int64 `json:"explicit_events"`
}

func runTransparent(cfg bench.NetnsConfig, scs []bench.Scenario, o bench.Options, runs int, asJSON bool, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "agentg-load: -transparent: building the namespaces, starting the origins and agentg, installing the redirect")
	env, err := bench.StartNetns(cfg)
	if err != nil {
		return err
	}
	defer env.Close()
	host, _ := os.Hostname()
	rep := &transparentReport{Date: time.Now().UTC().Format(time.RFC3339), Host: host, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Agentg: agentgVersion(env.Binary), Duration: o.Duration.String(), Warmup: o.Warmup.String(), Concurrency: o.Concurrency, Size: o.Size, Runs: runs}
	for _, sc := range scs {
		set := env.RunTransparentSet(sc, o, runs, func(round int, r bench.Result) {
			fmt.Fprintf(stderr, "  %-20s round %d/%d %-11s %s\n", sc.Name, round+1, runs, r.Mode, progressLine(sc, r))
		})
		rep.Sets = append(rep.Sets, set)
	}
	if err := env.Shutdown(); err != nil {
		fmt.Fprintln(stderr, "agentg-load: stopping agentg:", err)
	}
	rep.TransparentEvents, rep.ExplicitEvents = env.DoorEvents()
	if cfg.Keep {
		fmt.Fprintln(stderr, "agentg-load: files kept in", env.Dir)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.markdown(stdout)
	return nil
}

func (r *transparentReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "%s, `%s`: %d CPUs, %s. %s, own process in the router namespace, `--log-file`, explicit and transparent listeners.\n", r.Date, r.Host, r.CPUs, r.GoVersion, r.Agentg)
	fmt.Fprintf(w, "%d rounds of direct, explicit, transparent in turn; medians. Keep-alive runs: %s after %s warm-up, %d clients. Large: one GET of %s.\n\n",
		r.Runs, r.Duration, r.Warmup, r.Concurrency, sizeString(r.Size))
	fmt.Fprintln(w, "| scenario | transparent/explicit | target | | explicit/direct | transparent/direct | rounds (transparent/explicit) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	met := 0
	for _, s := range r.Sets {
		verdict := "missed"
		if s.VsExplicit.Met {
			verdict = "met"
			met++
		}
		fmt.Fprintf(w, "| %s | **%.2f** %s | ≥ %.2f | %s | %s | %s | %s |\n", s.Scenario.Name, s.VsExplicit.Judged(), s.Scenario.Metric,
			bench.TransparentTarget, verdict, judged(ratioOf(s.Set, bench.Agentg)), judged(ratioOf(s.Set, bench.Transparent)), rounds(&s.VsExplicit))
	}
	fmt.Fprintf(w, "\ntransparent mode met %d of %d targets.\n\n", met, len(r.Sets))
	fmt.Fprintln(w, "| scenario | mode | req/s | MB/s | p50 | p99 | /direct | agentg CPU | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Sets {
		row := func(res bench.Result, ratio *bench.Ratio) {
			rel := "—"
			if ratio != nil {
				rel = fmt.Sprintf("%.2f (p50 ×%.1f)", ratio.Judged(), ratio.P50)
			}
			rps := thousands(res.ReqPerSec)
			if s.Scenario.Large {
				rps = "—"
			}
			mode := string(res.Mode)
			if res.Mode == bench.Agentg {
				mode = "explicit"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s | %s | %s | %s | %d |\n", s.Scenario.Name, mode,
				rps, res.MBPerSec, dur(res.P50), dur(res.P99), rel, cpu(s.Scenario, res), res.Errors)
		}
		row(s.Direct, nil)
		for i, p := range s.Proxied {
			row(p, &s.Ratios[i])
		}
	}
	fmt.Fprintf(w, "\nagentg's log: %d decision events (http, connect) from the transparent listener, %d from the explicit one.\n", r.TransparentEvents, r.ExplicitEvents)
	for _, s := range r.Sets {
		for _, res := range append([]bench.Result{s.Direct}, s.Proxied...) {
			if res.Errors > 0 {
				fmt.Fprintf(w, "\n%s %s: %d errors, first: %s", s.Scenario.Name, res.Mode, res.Errors, res.FirstError)
			}
		}
	}
}
