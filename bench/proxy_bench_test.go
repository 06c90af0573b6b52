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

// benchGet measures one keep-alive GET of the small body at a time; the
// allocations counted are the whole process's: client, origin and (through
// agentg) the proxy, so Proxy minus Direct is agentg's share.
func benchGet(b *testing.B, tls, viaProxy bool) {
	e := startEnv(b)
	c := e.Client(viaProxy, 1)
	defer c.CloseIdleConnections()
	url := e.HTTPBase + "/small"
	if tls {
		url = e.HTTPSBase + "/small"
	}
	get := func() {
		if _, err := fetch(b.Context(), c, url, SmallBody); err != nil {
			b.Fatal(err)
		}
	}
	get() // open the connection (and tunnel) outside the timing
	b.ReportAllocs()
	b.SetBytes(SmallBody)
	for b.Loop() {
		get()
	}
}

func BenchmarkPlainHTTPDirect(b *testing.B)     { benchGet(b, false, false) }
func BenchmarkPlainHTTPProxy(b *testing.B)      { benchGet(b, false, true) }
func BenchmarkConnectTunnelDirect(b *testing.B) { benchGet(b, true, false) }
func BenchmarkConnectTunnelProxy(b *testing.B)  { benchGet(b, true, true) }

// TestHarness runs every scenario briefly in both modes, so the harness
// cannot rot: each run must move bytes without errors, and the agentg runs
// must show up in agentg's audit log.
func TestHarness(t *testing.T) {
	e := startEnv(t)
	o := Options{Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond, Concurrency: 4, Size: 4 << 20}
	for _, sc := range Scenarios {
		for _, m := range []Mode{Direct, Agentg} {
			h0, c0 := settle(e)
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
			// Run closed its connections: tunnels log as they close.
			var dh, dc int64
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				h, c := e.Events()
				dh, dc = h-h0, c-c0
				if m == Direct || (sc.TLS && dc > 0) || (!sc.TLS && dh >= r.Requests) || time.Now().After(deadline) {
					break
				}
			}
			switch {
			case m == Direct && dh+dc != 0:
				t.Errorf("%s direct: agentg logged %d http and %d connect events; the direct client used the proxy", sc.Name, dh, dc)
			case m == Agentg && sc.TLS && dc == 0:
				t.Errorf("%s agentg: no connect event in agentg's log", sc.Name)
			case m == Agentg && !sc.TLS && dh < r.Requests:
				t.Errorf("%s agentg: %d http events for %d requests", sc.Name, dh, r.Requests)
			}
		}
	}
	if _, ok := ScenarioByName("connect"); !ok {
		t.Error("ScenarioByName(connect) not found")
	}
}

// settle waits until the previous run's tunnels have all closed and
// logged, and returns the event counts then.
func settle(e *Env) (int64, int64) {
	h, c := e.Events()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		h2, c2 := e.Events()
		if h2 == h && c2 == c {
			break
		}
		h, c = h2, c2
	}
	return h, c
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
