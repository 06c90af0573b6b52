package bench

import (
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// withSquid says whether the Squid parts run: they need Squid installed
// (scripts/bench.sh installs it) and take longer, so the normal suite
// leaves them out unless AGENTG_BENCH_SQUID=1.
func withSquid() bool { return os.Getenv("AGENTG_BENCH_SQUID") == "1" }

// shared is the package's one Env (origins, an agentg process, Squid when
// asked for), started by the first test or benchmark that needs it and
// closed by TestMain.
var shared struct {
	once sync.Once
	env  *Env
	err  error
}

func sharedEnv(tb testing.TB) *Env {
	tb.Helper()
	shared.once.Do(func() {
		shared.env, shared.err = Start(Config{Squid: withSquid(), SquidRequired: withSquid(), Stderr: os.Stderr})
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		shared.env.Close()
	}
	testenv.RemoveAgentgBinary()
	os.Exit(code)
}

// benchGet measures one GET of the small body at a time, over keep-alive
// or (sc.NewConn) each on its own new connection, in each mode: direct,
// through the agentg process (round-trip latency as users see it), through
// an in-process agentg (whose allocations count in allocs/op: inprocess
// minus direct is agentg's share per request), and through Squid when
// AGENTG_BENCH_SQUID=1.
func benchGet(b *testing.B, name string) {
	sc, ok := ScenarioByName(name)
	if !ok {
		b.Fatalf("no scenario %q", name)
	}
	e := sharedEnv(b)
	ip := startInProcess(b, e)
	clients := map[string]func() *http.Client{
		"direct":    func() *http.Client { return e.ClientFor(Direct, sc, 1) },
		"agentg":    func() *http.Client { return e.ClientFor(Agentg, sc, 1) },
		"inprocess": func() *http.Client { return ip.client(e, sc) },
	}
	order := []string{"direct", "agentg", "inprocess"}
	if e.Squid != nil && (!sc.Intercept || e.Squid.Bump) {
		clients["squid"] = func() *http.Client { return e.ClientFor(Squid, sc, 1) }
		order = append(order, "squid")
	}
	url := sizedURL(e.Base(sc), SmallBody)
	for _, mode := range order {
		b.Run(mode, func(b *testing.B) {
			c := clients[mode]()
			defer c.CloseIdleConnections()
			get := func() {
				if _, err := fetch(b.Context(), c, url, SmallBody); err != nil {
					b.Fatal(err)
				}
			}
			get() // open the connection (and tunnel) outside the timing; issue the leaf
			b.ReportAllocs()
			b.SetBytes(SmallBody)
			for b.Loop() {
				get()
			}
		})
	}
}

func BenchmarkPlainHTTP(b *testing.B)          { benchGet(b, "http") }
func BenchmarkConnectTunnel(b *testing.B)      { benchGet(b, "connect") }
func BenchmarkIntercepted(b *testing.B)        { benchGet(b, "intercept-keepalive") }
func BenchmarkInterceptedNewConn(b *testing.B) { benchGet(b, "intercept-newconn") }

// brief is a run short enough for the normal suite.
var brief = Options{Duration: 150 * time.Millisecond, Warmup: 20 * time.Millisecond, Concurrency: 4, Size: 4 << 20}

// TestHarness runs every scenario briefly direct and through the agentg
// process, so the harness cannot rot: each run must move bytes without
// errors, the agentg runs must show up in agentg's log file, the
// intercepted runs' events must say "tls":"intercepted" (and the plain
// tunnels' must not), and new-connection runs must really open a
// connection per request.
func TestHarness(t *testing.T) {
	e := sharedEnv(t)
	for _, sc := range Scenarios {
		for _, m := range []Mode{Direct, Agentg} {
			ev0 := settle(e)
			acc0 := e.OriginTLSAccepts()
			r := e.Run(sc, m, brief)
			checkResult(t, sc, r)
			// Run closed its connections: tunnels log as they close, and
			// requests inside intercepted tunnels as they finish.
			tunnels := int64(1)
			if sc.NewConn {
				tunnels = r.Requests // one tunnel per request
			}
			var d Events
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				d = e.Events(Agentg).Sub(ev0)
				done := false
				switch {
				case m == Direct:
					done = true
				case sc.Intercept:
					done = d.InterceptedConnect >= tunnels && d.InterceptedHTTP >= r.Requests
				case sc.TLS:
					done = d.Connect >= tunnels
				default:
					done = d.HTTP >= r.Requests
				}
				if done || time.Now().After(deadline) {
					break
				}
			}
			switch {
			case m == Direct && d != (Events{}):
				t.Errorf("%s direct: agentg logged %+v; the direct client used the proxy", sc.Name, d)
			case m == Direct:
			case sc.Intercept && (d.InterceptedConnect < tunnels || d.Connect != d.InterceptedConnect):
				t.Errorf("%s: %d intercepted of %d connect events, want ≥ %d intercepted and none plain", sc.Name, d.InterceptedConnect, d.Connect, tunnels)
			case sc.Intercept && (d.InterceptedHTTP < r.Requests || d.HTTP != d.InterceptedHTTP):
				t.Errorf("%s: %d intercepted of %d http events for %d requests", sc.Name, d.InterceptedHTTP, d.HTTP, r.Requests)
			case !sc.Intercept && d.InterceptedConnect+d.InterceptedHTTP != 0:
				t.Errorf("%s: intercepted events %+v in a run that should not be intercepted", sc.Name, d)
			case sc.TLS && !sc.Intercept && (d.Connect < tunnels || d.HTTP != 0):
				t.Errorf("%s: %d connect and %d http events, want ≥ %d connect and no http", sc.Name, d.Connect, d.HTTP, tunnels)
			case !sc.TLS && d.HTTP < r.Requests:
				t.Errorf("%s: %d http events for %d requests", sc.Name, d.HTTP, r.Requests)
			}
			if m == Agentg && r.ProxyCPU <= 0 && r.Elapsed > time.Second {
				t.Errorf("%s: no CPU time read for the agentg process", sc.Name)
			}
			// A new connection per request: direct, the origin sees each
			// one; intercepted, agentg's pooled upstream connections
			// serve them all (a handful of accepts).
			acc := e.OriginTLSAccepts() - acc0
			if sc.NewConn && m == Direct && acc < r.Requests {
				t.Errorf("%s direct: origin accepted %d connections for %d requests", sc.Name, acc, r.Requests)
			}
			if sc.NewConn && m == Agentg && acc >= r.Requests {
				t.Errorf("%s agentg: origin accepted %d connections for %d requests; agentg's upstream pool unused", sc.Name, acc, r.Requests)
			}
		}
	}
}

// settle waits until the previous run's tunnels have all closed and
// logged (agentg's log has stopped growing for 100ms), and returns the
// event counts then.
func settle(e *Env) Events {
	ev := e.Events(Agentg)
	for quiet, deadline := 0, time.Now().Add(3*time.Second); quiet < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		ev2 := e.Events(Agentg)
		if ev2 == ev {
			quiet++
		} else {
			quiet, ev = 0, ev2
		}
	}
	return ev
}

// TestRunSet checks the rounds alternate and the ratios come out of the
// medians, on the cheapest scenario.
func TestRunSet(t *testing.T) {
	e := sharedEnv(t)
	sc, _ := ScenarioByName("http")
	var order []Mode
	set := e.RunSet(sc, Options{Duration: 50 * time.Millisecond, Concurrency: 2}, 3, func(_ int, r Result) { order = append(order, r.Mode) })
	want := e.Modes(sc)
	if len(order) != 3*(1+len(want)) || order[0] != Direct || order[1] != Agentg || order[1+len(want)] != Direct {
		t.Errorf("run order %v, want rounds of direct then %v", order, want)
	}
	if len(set.Ratios) != len(want) || set.Ratios[0].Mode != Agentg || len(set.Ratios[0].Runs) != 3 || set.Ratios[0].Target != sc.Target {
		t.Errorf("ratios %+v", set.Ratios)
	}
	if set.Direct.Requests == 0 || set.Proxied[0].Requests == 0 {
		t.Errorf("empty medians: %+v %+v", set.Direct, set.Proxied[0])
	}
}

func checkResult(t *testing.T, sc Scenario, r Result) {
	t.Helper()
	if r.Requests == 0 || r.Bytes == 0 || r.ReqPerSec == 0 || r.MBPerSec == 0 || r.P50 == 0 || r.P99 < r.P50 {
		t.Errorf("%s %s: empty or inconsistent result %+v", sc.Name, r.Mode, r)
	}
	if r.Errors != 0 {
		t.Errorf("%s %s: %d errors, first: %s", sc.Name, r.Mode, r.Errors, r.FirstError)
	}
	if sc.Large && r.Bytes != brief.Size {
		t.Errorf("%s %s: got %d bytes, want %d", sc.Name, r.Mode, r.Bytes, brief.Size)
	}
}

func TestPercentile(t *testing.T) {
	s := make([]time.Duration, 100)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{{s, 0.50, 50}, {s, 0.99, 99}, {s, 0, 1}, {s, 1, 100}, {nil, 0.5, 0}}
	for _, tt := range tests {
		if p := percentile(tt.in, tt.q); p != tt.want {
			t.Errorf("percentile(%d samples, %v) = %d, want %d", len(tt.in), tt.q, p, tt.want)
		}
	}
}
