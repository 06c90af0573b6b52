package bench

import (
	"net/http"
	"path/filepath"
	"slices"
	"testing"
)

// TestSquid runs every scenario briefly through Squid (AGENTG_BENCH_SQUID=1
// only): without errors, with the intercepting ones' clients trusting
// Squid's bump CA and nothing else, and every request in Squid's access
// log; bumped requests appear there as https:// URLs.
func TestSquid(t *testing.T) {
	if !withSquid() {
		t.Skip("AGENTG_BENCH_SQUID=1 runs the Squid checks (scripts/bench.sh installs Squid)")
	}
	e := sharedEnv(t)
	if !e.Squid.Bump {
		t.Fatalf("squid %s cannot ssl-bump", e.Squid.Info.Version)
	}
	var want Events
	for _, sc := range Scenarios {
		r := e.Run(sc, Squid, brief)
		checkResult(t, sc, r)
		switch {
		case sc.Intercept:
			want.HTTP += r.Requests
			want.InterceptedHTTP += r.Requests
			want.Connect++
		case sc.TLS:
			want.Connect++
		default:
			want.HTTP += r.Requests
		}
	}
	// Squid's log is complete once it has shut down.
	log := e.squidLog
	if err := e.Squid.Stop(); err != nil {
		t.Error(err)
	}
	e.Squid = nil // the benchmarks after this test go without it
	got := log.Count()
	if got.HTTP < want.HTTP || got.InterceptedHTTP < want.InterceptedHTTP || got.Connect < want.Connect {
		t.Errorf("squid access log counts %+v, want at least %+v", got, want)
	}
}

// TestSquidWithoutBump runs Squid as a plain proxy (no bump CA, as with a
// squid built without OpenSSL): tunnels to the intercepted name stay
// tunnels, so a client trusting the origin's CA completes its requests, and
// an Env with such a Squid leaves it out of the intercepted scenarios.
func TestSquidWithoutBump(t *testing.T) {
	if !withSquid() {
		t.Skip("AGENTG_BENCH_SQUID=1 runs the Squid checks (scripts/bench.sh installs Squid)")
	}
	e := sharedEnv(t)
	info, err := FindSquid()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := StartSquid(SquidConfig{Info: info, Dir: filepath.Join(e.Dir, "squid-plain"),
		Hosts: map[string]string{Host: "127.0.0.1", InterceptHost: "127.0.0.1"}, UpstreamCA: nil})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Stop()
	if plain.Bump {
		t.Fatal("Bump set without a bump CA")
	}
	pe := *e
	pe.Squid = plain
	for _, name := range []string{"http", "connect"} {
		sc, _ := ScenarioByName(name)
		checkResult(t, sc, pe.Run(sc, Squid, brief))
	}
	// Through the plain Squid, HTTPS to the intercepted name is a tunnel:
	// the origin's own certificate arrives.
	ik, _ := ScenarioByName("intercept-keepalive")
	c := pe.ClientFor(Direct, ik, 1)
	defer c.CloseIdleConnections()
	c.Transport.(*http.Transport).Proxy = http.ProxyURL(plain.URL())
	if _, err := fetch(t.Context(), c, sizedURL(pe.Base(ik), SmallBody), SmallBody); err != nil {
		t.Errorf("tunnel to %s through a plain squid: %v", InterceptHost, err)
	}
	for _, sc := range Scenarios {
		if ms := pe.Modes(sc); sc.Intercept && slices.Contains(ms, Squid) {
			t.Errorf("%s: modes %v include a squid that cannot bump", sc.Name, ms)
		}
	}
}
