package bench

import (
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
