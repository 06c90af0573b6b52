package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Mode says whether a run goes straight to the origin or through agentg,
// and how.
type Mode string

// Direct and Agentg are the modes of the original scenarios; the TLS
// interception scenarios run Direct, Tunnel and Intercepted.
const (
	Direct Mode = "direct"
	// Agentg: through agentg, as absolute-form requests (HTTP) or over a
	// CONNECT tunnel to Host, which is not intercepted (HTTPS).
	Agentg Mode = "agentg"
	// Tunnel: HTTPS through agentg over a plain CONNECT tunnel to Host
	// (the same path as Agentg for HTTPS, named for the comparison).
	Tunnel Mode = "tunnel"
	// Intercepted: HTTPS through agentg over a CONNECT tunnel to
	// InterceptHost, whose TLS agentg terminates with a leaf from its CA
	// and re-originates to the origin, deciding each request.
	Intercepted Mode = "intercepted"
)

// Scenario is one workload.
type Scenario struct {
	Name  string
	About string
	TLS   bool // HTTPS origin; through agentg that is a CONNECT tunnel
	Large bool // one GET of Options.Size bytes instead of a keep-alive loop
	// NewConn: every request on a new connection (the client disables
	// keep-alive), so through agentg a new CONNECT tunnel and, direct or
	// not, a new TLS handshake per request.
	NewConn bool
	// Modes are the proxied modes compared with Direct; nil means Agentg.
	Modes []Mode
	// Target is the floor for agentg/direct of Metric ("req/s" or "MB/s");
	// 0: no target, Metric is only what the runs are ranked by. Targets
	// overrides it per mode.
	Target  float64
	Targets map[Mode]float64
	Metric  string
}

// ProxiedModes are the modes sc compares with Direct.
func (sc Scenario) ProxiedModes() []Mode {
	if len(sc.Modes) == 0 {
		return []Mode{Agentg}
	}
	return sc.Modes
}

// TargetFor is the floor for m/direct; 0 means none.
func (sc Scenario) TargetFor(m Mode) float64 {
	if t, ok := sc.Targets[m]; ok {
		return t
	}
	if m == Agentg {
		return sc.Target
	}
	return 0
}

// Set is a scenario run in all its modes: the median direct run, and for
// each proxied mode its median run and its ratio to direct.
type Set struct {
	Direct  Result
	Proxied []Result
	Ratios  []Ratio
}

// Modes are the proxied modes e runs sc in: without an in-process agentg
// (Config.ProxyURL) there is no CA to trust, so Intercepted is left out;
// with only set, only those of them.
func (e *Env) Modes(sc Scenario, only ...Mode) []Mode {
	var ms []Mode
	for _, m := range sc.ProxiedModes() {
		if m == Intercepted && e.External || len(only) > 0 && !slices.Contains(only, m) {
			continue
		}
		ms = append(ms, m)
	}
	return ms
}

// RunSet runs sc direct and then in each of its proxied modes, n times
// interleaved (so that a noisy neighbour hurts all modes alike), and
// compares the median run of each proxied mode with the median direct run.
// Each Ratio.Runs has that mode's ratio to the direct run of the same round.
func (e *Env) RunSet(sc Scenario, o Options, n int) Set {
	modes := e.Modes(sc, o.Modes...)
	runs := map[Mode][]Result{}
	rounds := map[Mode][]float64{}
	for range max(n, 1) {
		d := e.Run(sc, Direct, o)
		runs[Direct] = append(runs[Direct], d)
		for _, m := range modes {
			a := e.Run(sc, m, o)
			runs[m] = append(runs[m], a)
			rounds[m] = append(rounds[m], Compare(sc, d, a).Judged())
		}
	}
	set := Set{Direct: Median(runs[Direct], sc.Metric)}
	for _, m := range modes {
		a := Median(runs[m], sc.Metric)
		r := Compare(sc, set.Direct, a)
		if n > 1 {
			r.Runs = rounds[m]
		}
		set.Proxied = append(set.Proxied, a)
		set.Ratios = append(set.Ratios, r)
	}
	return set
}

// Scenarios are the workloads, in the order the harness runs them.
var Scenarios = []Scenario{
	{Name: "http", About: "plain HTTP keep-alive GETs of a 1 KiB body; through agentg as absolute-form requests",
		Target: 0.35, Metric: "req/s"},
	{Name: "connect", About: "HTTPS keep-alive GETs of a 1 KiB body; through agentg over reused CONNECT tunnels",
		TLS: true, Target: 0.50, Metric: "req/s"},
	{Name: "https-keepalive", About: "HTTPS keep-alive GETs of a 1 KiB body; through agentg over reused plain and intercepted CONNECT tunnels",
		TLS: true, Modes: []Mode{Tunnel, Intercepted}, Targets: map[Mode]float64{Intercepted: 0.40}, Metric: "req/s"},
	{Name: "https-newconn", About: "HTTPS GETs of a 1 KiB body, each on a new connection and TLS handshake; through agentg each a new plain or intercepted CONNECT tunnel",
		TLS: true, NewConn: true, Modes: []Mode{Tunnel, Intercepted}, Targets: map[Mode]float64{Intercepted: 0.50}, Metric: "req/s"},
	{Name: "large-connect", About: "one HTTPS GET of -size bytes; through agentg over a CONNECT tunnel",
		TLS: true, Large: true, Target: 0.90, Metric: "MB/s"},
	{Name: "large-http", About: "one plain HTTP GET of -size bytes; through agentg as an absolute-form request (no target)",
		Large: true, Metric: "MB/s"},
}

// ScenarioByName finds a scenario.
func ScenarioByName(name string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Options size a run.
type Options struct {
	Duration    time.Duration // measured time of a keep-alive scenario
	Warmup      time.Duration // unmeasured time before it, to open connections
	Concurrency int           // clients of a keep-alive scenario
	Size        int64         // body of a large scenario
	// Modes restricts the proxied modes run (Direct always runs); nil
	// runs each scenario's own.
	Modes []Mode
}

// Run runs sc in mode m with a fresh client, and closes that client's
// connections (so tunnels end and log their events) before returning. It
// stops by itself: every request carries a deadline. The client's
// goroutines carry the profile labels role=client and mode=m.
func (e *Env) Run(sc Scenario, m Mode, o Options) (r Result) {
	labelled("client", m, func() { r = e.run(sc, m, o) })
	return r
}

func (e *Env) run(sc Scenario, m Mode, o Options) Result {
	conc := max(o.Concurrency, 1)
	if sc.Large {
		conc = 1
	}
	c := e.ClientFor(m, conc, sc.NewConn)
	defer c.CloseIdleConnections()
	base := e.Base(sc, m)
	ctx, cancel := context.WithTimeout(context.Background(), o.Warmup+o.Duration+5*time.Minute)
	defer cancel()

	if sc.Large {
		fetch(ctx, c, base+"/small", SmallBody) // open the connection (and tunnel) first
		start := time.Now()
		n, err := fetch(ctx, c, base+"/large?n="+strconv.FormatInt(o.Size, 10), o.Size)
		el := time.Since(start)
		r := newResult(sc.Name, m, 1, 1, 0, n, el, []time.Duration{el})
		if err != nil {
			r.Errors, r.FirstError = 1, err.Error()
		}
		return r
	}

	url := base + "/small"
	loop(ctx, c, url, conc, time.Now().Add(o.Warmup)) // unmeasured
	start := time.Now()
	w := loop(ctx, c, url, conc, start.Add(o.Duration))
	el := time.Since(start)
	r := newResult(sc.Name, m, conc, w.reqs, w.errs, w.bytes, el, w.lat)
	r.FirstError = w.firstErr
	return r
}

// Base is the origin URL (scheme://name:port) sc's clients use in mode m.
func (e *Env) Base(sc Scenario, m Mode) string {
	switch {
	case !sc.TLS:
		return e.HTTPBase
	case m == Intercepted:
		return e.InterceptBase
	default:
		return e.HTTPSBase
	}
}

// tally is what the workers of one loop did.
type tally struct {
	reqs, errs, bytes int64
	lat               []time.Duration
	firstErr          string
}

// loop runs conc workers doing GETs of url until deadline.
func loop(ctx context.Context, c *http.Client, url string, conc int, deadline time.Time) tally {
	var (
		mu  sync.Mutex
		all tally
		wg  sync.WaitGroup
	)
	for range conc {
		wg.Go(func() {
			var t tally
			t.lat = make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := fetch(ctx, c, url, SmallBody)
				t.lat = append(t.lat, time.Since(t0))
				t.bytes += n
				if err != nil {
					t.errs++
					if t.firstErr == "" {
						t.firstErr = err.Error()
					}
					continue
				}
				t.reqs++
			}
			mu.Lock()
			all.reqs += t.reqs
			all.errs += t.errs
			all.bytes += t.bytes
			all.lat = append(all.lat, t.lat...)
			if all.firstErr == "" {
				all.firstErr = t.firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

// fetch GETs url, reads the whole body and checks it is want bytes long.
func fetch(ctx context.Context, c *http.Client, url string, want int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if n != want {
		return n, fmt.Errorf("GET %s: %w: %d of %d bytes", url, errShortBody, n, want)
	}
	return n, nil
}
