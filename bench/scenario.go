package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Mode says how a run reaches the origin.
type Mode string

const (
	Direct Mode = "direct" // straight to the origin
	Agentg Mode = "agentg" // through agentg, its own process
	Squid  Mode = "squid"  // through Squid, when installed
)

// Scenario is one workload, measured direct, through agentg and through
// Squid.
type Scenario struct {
	Name  string
	About string
	// TLS: HTTPS to the origin; through a proxy, a CONNECT tunnel to Host
	// that the proxy does not open (TLS end to end).
	TLS bool
	// Intercept: HTTPS to InterceptHost, whose TLS the proxy terminates
	// (agentg's intercept, Squid's ssl-bump) and re-originates.
	Intercept bool
	// NewConn: every request on a new connection (the client disables
	// keep-alive), so a new TLS handshake and, through a proxy, a new
	// CONNECT per request.
	NewConn bool
	// Large: one GET of Options.Size bytes instead of a keep-alive loop.
	Large bool
	// Metric is what the runs are ranked and judged by: req/s or MB/s.
	Metric string
	// Target is the floor for agentg/direct of Metric.
	Target float64
	// SquidRef is Squid 5.7's squid/direct measured the same way on the
	// same kind of 2-core machine, for reading this run's Squid row
	// against; 0 when there is none.
	SquidRef float64
}

// Scenarios are the workloads, in the order the harness runs them.
var Scenarios = []Scenario{
	{Name: "http", About: "plain HTTP keep-alive GETs of a 1 KiB body; proxied as absolute-form requests",
		Metric: "req/s", Target: 0.40, SquidRef: 0.27},
	{Name: "connect", About: "HTTPS keep-alive GETs of a 1 KiB body over a CONNECT tunnel (TLS to the origin, many requests per connection)",
		TLS: true, Metric: "req/s", Target: 0.60, SquidRef: 0.58},
	{Name: "large", About: "one HTTPS GET of -size bytes over a CONNECT tunnel",
		TLS: true, Large: true, Metric: "MB/s", Target: 0.90},
	{Name: "intercept-keepalive", About: "HTTPS keep-alive GETs of a 1 KiB body; the proxy terminates TLS (agentg intercept, Squid ssl-bump) and re-originates",
		TLS: true, Intercept: true, Metric: "req/s", Target: 0.40, SquidRef: 0.25},
	{Name: "intercept-newconn", About: "as intercept-keepalive, each request on a new connection: CONNECT, TLS handshake with the proxy, one GET",
		TLS: true, Intercept: true, NewConn: true, Metric: "req/s", Target: 0.70, SquidRef: 0.20},
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
	Duration    time.Duration // measured time of a keep-alive run
	Warmup      time.Duration // unmeasured time before it, to open connections
	Concurrency int           // clients of a keep-alive run
	Size        int64         // body of a large run
	// MaxRequests bounds a keep-alive run's requests besides its
	// duration; 0 means 10 million.
	MaxRequests int64
}

// runner is what the runs need of an environment: Env on loopback, and
// NetnsEnv (transparent mode across network namespaces).
type runner interface {
	// Modes are the proxied modes sc runs in, after Direct.
	Modes(sc Scenario) []Mode
	ClientFor(m Mode, sc Scenario, conns int) *http.Client
	Base(sc Scenario) string
	proxyPid(m Mode) int
}

var _ runner = (*Env)(nil)

// Modes are the proxied modes e can run sc in: agentg, and Squid when it
// runs (and, for an intercepting scenario, can ssl-bump).
func (e *Env) Modes(sc Scenario) []Mode {
	ms := []Mode{Agentg}
	if e.Squid != nil && (!sc.Intercept || e.Squid.Bump) {
		ms = append(ms, Squid)
	}
	return ms
}

// Set is a scenario run in all its modes: the median direct run, and for
// each proxied mode its median run and its ratio to direct.
type Set struct {
	Scenario Scenario
	Direct   Result
	Proxied  []Result
	Ratios   []Ratio
}

// RunSet runs sc in rounds of direct, agentg, squid (as available), n
// rounds (at least 1), so that drift on a shared machine hits every mode
// alike, and compares each proxied mode's median run with the median
// direct run. Each Ratio.Runs holds that mode's ratio to the direct run of
// the same round. progress, when set, is told of every run as it ends.
func (e *Env) RunSet(sc Scenario, o Options, n int, progress func(round int, r Result)) Set {
	set, _ := runSet(e, sc, o, n, progress)
	return set
}

// runSet is RunSet in any environment; it also returns every run by mode.
func runSet(e runner, sc Scenario, o Options, n int, progress func(round int, r Result)) (Set, map[Mode][]Result) {
	modes := e.Modes(sc)
	runs := map[Mode][]Result{}
	rounds := map[Mode][]float64{}
	for i := range max(n, 1) {
		d := run(e, sc, Direct, o)
		runs[Direct] = append(runs[Direct], d)
		if progress != nil {
			progress(i, d)
		}
		for _, m := range modes {
			a := run(e, sc, m, o)
			runs[m] = append(runs[m], a)
			rounds[m] = append(rounds[m], Compare(sc, d, a).Judged())
			if progress != nil {
				progress(i, a)
			}
		}
	}
	set := Set{Scenario: sc, Direct: Median(runs[Direct], sc.Metric)}
	for _, m := range modes {
		a := Median(runs[m], sc.Metric)
		r := Compare(sc, set.Direct, a)
		r.Runs = rounds[m]
		set.Proxied = append(set.Proxied, a)
		set.Ratios = append(set.Ratios, r)
	}
	return set, runs
}

// Run runs sc in mode m with a fresh client, and closes that client's
// connections (so tunnels end and are logged) before returning. It stops
// by itself: by time, by count, and every request carries a deadline.
func (e *Env) Run(sc Scenario, m Mode, o Options) Result { return run(e, sc, m, o) }

func run(e runner, sc Scenario, m Mode, o Options) Result {
	conc := max(o.Concurrency, 1)
	if sc.Large {
		conc = 1
	}
	c := e.ClientFor(m, sc, conc)
	defer c.CloseIdleConnections()
	base := e.Base(sc)
	ctx, cancel := context.WithTimeout(context.Background(), o.Warmup+o.Duration+5*time.Minute)
	defer cancel()
	pid := e.proxyPid(m)

	if sc.Large {
		fetch(ctx, c, sizedURL(base, SmallBody), SmallBody) // open the connection (and tunnel) first
		cpu0, self0 := processCPU(pid), selfCPU()
		start := time.Now()
		n, err := fetch(ctx, c, sizedURL(base, o.Size), o.Size)
		el := time.Since(start)
		r := newResult(sc.Name, m, 1, 1, 0, n, el, []time.Duration{el})
		r.setCPU(processCPU(pid)-cpu0, selfCPU()-self0, pid != 0)
		if err != nil {
			r.Errors, r.FirstError = 1, err.Error()
		}
		return r
	}

	url := sizedURL(base, SmallBody)
	get := func(ctx context.Context) (int64, error) { return fetch(ctx, c, url, SmallBody) }
	return keepAlive(ctx, sc.Name, m, pid, o, conc, get)
}

// keepAlive runs conc workers calling do, unmeasured for o.Warmup and then
// measured for o.Duration (or o.MaxRequests), charging process pid's CPU
// (0: none) to the measured part.
func keepAlive(ctx context.Context, name string, m Mode, pid int, o Options, conc int, do func(context.Context) (int64, error)) Result {
	limit := o.MaxRequests
	if limit <= 0 {
		limit = 10_000_000
	}
	loop(ctx, do, conc, time.Now().Add(o.Warmup), limit) // unmeasured
	cpu0, self0 := processCPU(pid), selfCPU()
	start := time.Now()
	w := loop(ctx, do, conc, start.Add(o.Duration), limit)
	el := time.Since(start)
	r := newResult(name, m, conc, w.reqs, w.errs, w.bytes, el, w.lat)
	r.setCPU(processCPU(pid)-cpu0, selfCPU()-self0, pid != 0)
	r.FirstError = w.firstErr
	return r
}

func sizedURL(base string, n int64) string { return base + "/bytes?n=" + strconv.FormatInt(n, 10) }

// tally is what the workers of one loop did.
type tally struct {
	reqs, errs, bytes int64
	lat               []time.Duration
	firstErr          string
}

// maxErrors stops a worker whose requests keep failing (a proxy that
// died fails in microseconds; its samples would only fill memory).
const maxErrors = 1000

// loop runs conc workers each calling do (one request, returning the body
// bytes it read) until deadline, or until they have made limit requests
// between them.
func loop(ctx context.Context, do func(context.Context) (int64, error), conc int, deadline time.Time, limit int64) tally {
	var (
		mu   sync.Mutex
		all  tally
		wg   sync.WaitGroup
		each = max(limit/int64(conc), 1)
	)
	for range conc {
		wg.Go(func() {
			var t tally
			t.lat = make([]time.Duration, 0, 4096)
			for n := int64(0); n < each && t.errs < maxErrors && time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				t0 := time.Now()
				got, err := do(ctx)
				t.lat = append(t.lat, time.Since(t0))
				t.bytes += got
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
	return send(ctx, c, http.MethodGet, url, nil, want)
}

// send makes one request with body (nil: none), reads the whole answer
// and checks it is want bytes long.
func send(ctx context.Context, c *http.Client, method, url string, body []byte, want int64) (int64, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
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
		return n, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	if n != want {
		return n, fmt.Errorf("%s %s: short body: %d of %d bytes", method, url, n, want)
	}
	return n, nil
}
