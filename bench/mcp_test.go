package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// withMCP says whether to run the MCP benchmark's checks, which start an
// MCP server per framing and two more agentg processes.
func withMCP() bool { return os.Getenv("AGENTG_BENCH_MCP") == "1" }

// TestMCPHarness (AGENTG_BENCH_MCP=1 only) runs the MCP workload briefly
// in every framing and mode, without errors; checks that the governed
// agentg decides (denies, redacts) and the intercepting one does not; and
// takes a few first-event and stream-memory samples.
func TestMCPHarness(t *testing.T) {
	if !withMCP() {
		t.Skip("AGENTG_BENCH_MCP=1 runs the MCP benchmark's checks")
	}
	e, err := StartMCP(MCPConfig{Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range MCPFramings {
		if err := e.CheckMCPPolicy(ctx, f); err != nil {
			t.Errorf("%v: %v", f, err)
		}
		for _, m := range MCPModes {
			r := e.RunMCP(f, m, brief)
			if r.Requests == 0 || r.Errors != 0 || r.P50 == 0 || r.P99 < r.P50 {
				t.Errorf("%v %s: %d calls, %d errors (first: %s), p50 %v p99 %v", f, m, r.Requests, r.Errors, r.FirstError, r.P50, r.P99)
			}
		}
	}
	for _, m := range MCPModes {
		fe := e.MeasureFirstEvent(m, 3)
		if fe.Errors != 0 || fe.Samples != 3 || fe.Max >= stuck {
			t.Errorf("first event %s: %+v", m, fe)
		}
	}
	for _, m := range MCPModes[1:] {
		sm, err := e.MeasureStreamMemory(m, 5, 3)
		if err != nil {
			t.Errorf("stream memory %s: %v", m, err)
			continue
		}
		if sm.Delivered == 0 {
			t.Errorf("stream memory %s: no event reached the streams: %+v", m, sm)
		}
	}
}
