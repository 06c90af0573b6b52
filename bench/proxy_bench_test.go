package bench

import (
	"testing"
	"time"
)

// startEnv starts origins and an in-process agentg with logging off.
func startEnv(tb testing.TB) *Env {
	tb.Helper()
	e, err := Start(Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	return e
}

// benchGet measures one GET of the small body at a time, over keep-alive
// or (newConn) each on its own new connection; the allocations counted are
// the whole process's: client, origin and (through agentg) the proxy, so
// Proxy minus Direct is agentg's share.
func benchGet(b *testing.B, tls bool, m Mode, newConn bool) {
	e := startEnv(b)
	c := e.ClientFor(m, 1, newConn)
	defer c.CloseIdleConnections()
	url := e.Base(Scenario{TLS: tls}, m) + "/small"
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
}

func BenchmarkPlainHTTPDirect(b *testing.B)     { benchGet(b, false, Direct, false) }
func BenchmarkPlainHTTPProxy(b *testing.B)      { benchGet(b, false, Agentg, false) }
func BenchmarkConnectTunnelDirect(b *testing.B) { benchGet(b, true, Direct, false) }
func BenchmarkConnectTunnelProxy(b *testing.B)  { benchGet(b, true, Agentg, false) }

// TLS interception: keep-alive (one tunnel, many requests) and a new
// connection per request (CONNECT and TLS handshake each time).
func BenchmarkHTTPSKeepAliveDirect(b *testing.B)      { benchGet(b, true, Direct, false) }
func BenchmarkHTTPSKeepAliveTunnel(b *testing.B)      { benchGet(b, true, Tunnel, false) }
func BenchmarkHTTPSKeepAliveIntercepted(b *testing.B) { benchGet(b, true, Intercepted, false) }
func BenchmarkHTTPSNewConnDirect(b *testing.B)        { benchGet(b, true, Direct, true) }
func BenchmarkHTTPSNewConnTunnel(b *testing.B)        { benchGet(b, true, Tunnel, true) }
func BenchmarkHTTPSNewConnIntercepted(b *testing.B)   { benchGet(b, true, Intercepted, true) }

// TestHarness runs every scenario briefly in all its modes, so the harness
// cannot rot: each run must move bytes without errors, the agentg runs must
// show up in agentg's audit log, the intercepted runs' events must say
// "tls":"intercepted" (and the plain tunnels' must not), and new-connection
// runs must really open a connection per request.
func TestHarness(t *testing.T) {
	e := startEnv(t)
	o := Options{Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond, Concurrency: 4, Size: 4 << 20}
	for _, sc := range Scenarios {
		if sc.NewConn || len(sc.Modes) > 0 {
			o.Duration = 150 * time.Millisecond // three modes: keep the test short
		}
		for _, m := range append([]Mode{Direct}, e.Modes(sc)...) {
			ev0 := settle(e)
			acc0 := e.OriginTLSAccepts()
			r := e.Run(sc, m, o)
			if r.Requests == 0 || r.Bytes == 0 || r.ReqPerSec == 0 || r.MBPerSec == 0 || r.P50 == 0 || r.P99 < r.P50 {
				t.Errorf("%s %s: empty or inconsistent result %+v", sc.Name, m, r)
			}
			if r.Errors != 0 {
				t.Errorf("%s %s: %d errors, first: %s", sc.Name, m, r.Errors, r.FirstError)
			}
			if sc.Large && r.Bytes != o.Size {
				t.Errorf("%s %s: got %d bytes, want %d", sc.Name, m, r.Bytes, o.Size)
			}
			// Run closed its connections: tunnels log as they close, and
			// requests inside intercepted tunnels as they finish.
			tunnels := int64(1)
			if sc.NewConn {
				tunnels = r.Requests // one tunnel per request
			}
			var d Events
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				d = e.Events().sub(ev0)
				done := false
				switch {
				case m == Direct:
					done = true
				case m == Intercepted:
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
			case m == Intercepted && (d.InterceptedConnect < tunnels || d.Connect != d.InterceptedConnect):
				t.Errorf("%s intercepted: %d intercepted of %d connect events, want ≥ %d intercepted and none plain", sc.Name, d.InterceptedConnect, d.Connect, tunnels)
			case m == Intercepted && (d.InterceptedHTTP < r.Requests || d.HTTP != d.InterceptedHTTP):
				t.Errorf("%s intercepted: %d intercepted of %d http events for %d requests", sc.Name, d.InterceptedHTTP, d.HTTP, r.Requests)
			case m != Intercepted && d.InterceptedConnect+d.InterceptedHTTP != 0:
				t.Errorf("%s %s: intercepted events %+v in a run that should not be intercepted", sc.Name, m, d)
			case m != Direct && m != Intercepted && sc.TLS && (d.Connect < tunnels || d.HTTP != 0):
				t.Errorf("%s %s: %d connect and %d http events, want ≥ %d connect and no http", sc.Name, m, d.Connect, d.HTTP, tunnels)
			case m != Direct && !sc.TLS && d.HTTP < r.Requests:
				t.Errorf("%s %s: %d http events for %d requests", sc.Name, m, d.HTTP, r.Requests)
			}
			// A new connection per request: direct, the origin sees each
			// one; intercepted, agentg's pooled upstream connections
			// serve them all (a handful of accepts).
			acc := e.OriginTLSAccepts() - acc0
			if sc.NewConn && m != Intercepted && acc < r.Requests {
				t.Errorf("%s %s: origin accepted %d connections for %d requests", sc.Name, m, acc, r.Requests)
			}
			if sc.NewConn && m == Intercepted && acc >= r.Requests {
				t.Errorf("%s intercepted: origin accepted %d connections for %d requests; agentg's upstream pool unused", sc.Name, acc, r.Requests)
			}
		}
	}
	if n := e.LeavesIssued(); n != 1 {
		t.Errorf("agentg issued %d leaves, want 1 (one host, cached)", n)
	}
	if _, ok := ScenarioByName("connect"); !ok {
		t.Error("ScenarioByName(connect) not found")
	}
}

func (a Events) sub(b Events) Events {
	return Events{HTTP: a.HTTP - b.HTTP, Connect: a.Connect - b.Connect,
		InterceptedHTTP: a.InterceptedHTTP - b.InterceptedHTTP, InterceptedConnect: a.InterceptedConnect - b.InterceptedConnect}
}

// settle waits until the previous run's tunnels have all closed and
// logged, and returns the event counts then.
func settle(e *Env) Events {
	ev := e.Events()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		ev2 := e.Events()
		if ev2 == ev {
			break
		}
		ev = ev2
	}
	return ev
}

func TestPercentile(t *testing.T) {
	s := make([]time.Duration, 100)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	if p := percentile(s, 0.50); p != 50 {
		t.Errorf("p50 = %d, want 50", p)
	}
	if p := percentile(s, 0.99); p != 99 {
		t.Errorf("p99 = %d, want 99", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of nothing = %d", p)
	}
}
