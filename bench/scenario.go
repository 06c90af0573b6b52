package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Mode says whether a run goes straight to the origin or through agentg.
type Mode string

// The two modes every scenario runs in.
const (
	Direct Mode = "direct"
	Agentg Mode = "agentg"
)

// Scenario is one workload.
type Scenario struct {
	Name  string
	About string
	TLS   bool // HTTPS origin; through agentg that is a CONNECT tunnel
	Large bool // one GET of Options.Size bytes instead of a keep-alive loop
	// Target is the floor for agentg/direct of Metric ("req/s" or "MB/s");
	// 0: no target, Metric is only what the runs are ranked by.
	Target float64
	Metric string
}

// RunPairs runs sc direct then through agentg, n times interleaved (so
// that a noisy neighbour hurts both modes alike), and compares the median
// run of each mode. Ratio.Runs has each pair's own ratio.
func (e *Env) RunPairs(sc Scenario, o Options, n int) (direct, agent Result, r Ratio) {
	var ds, as []Result
	var runs []float64
	for range max(n, 1) {
		d := e.Run(sc, Direct, o)
		a := e.Run(sc, Agentg, o)
		ds, as = append(ds, d), append(as, a)
		runs = append(runs, Compare(sc, d, a).Judged())
	}
	direct, agent = Median(ds, sc.Metric), Median(as, sc.Metric)
	r = Compare(sc, direct, agent)
	if len(runs) > 1 {
		r.Runs = runs
	}
	return direct, agent, r
}

// Scenarios are the workloads, in the order the harness runs them.
var Scenarios = []Scenario{
	{Name: "http", About: "plain HTTP keep-alive GETs of a 1 KiB body; through agentg as absolute-form requests",
		Target: 0.35, Metric: "req/s"},
	{Name: "connect", About: "HTTPS keep-alive GETs of a 1 KiB body; through agentg over reused CONNECT tunnels",
		TLS: true, Target: 0.50, Metric: "req/s"},
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
}

// Run runs sc in mode m with a fresh client, and closes that client's
// connections (so tunnels end and log their events) before returning. It
// stops by itself: every request carries a deadline.
func (e *Env) Run(sc Scenario, m Mode, o Options) Result {
	conc := max(o.Concurrency, 1)
	if sc.Large {
		conc = 1
	}
	c := e.Client(m == Agentg, conc)
	defer c.CloseIdleConnections()
	base := e.HTTPBase
	if sc.TLS {
		base = e.HTTPSBase
	}
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
