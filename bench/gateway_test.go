package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestGatewayHarness (AGENTG_BENCH_MCP=1 only) runs the gateway workload
// briefly in every framing and mode without errors, checks that the
// gateway decides (denies, redacts) before measuring, lists the ten
// servers' thousand tools, and reads the memory of a few idle sessions.
func TestGatewayHarness(t *testing.T) {
	if !withMCP() {
		t.Skip("AGENTG_BENCH_MCP=1 runs the gateway benchmark's checks")
	}
	e, err := StartGateway(MCPConfig{Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.CheckGatewayPolicy(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range MCPFramings {
		for _, m := range GatewayModes {
			r := e.RunGatewayCall(f, m, brief)
			if r.Requests == 0 || r.Errors != 0 || r.P50 == 0 || r.P99 < r.P50 {
				t.Errorf("%v %s: %d calls, %d errors (first: %s), p50 %v p99 %v", f, m, r.Requests, r.Errors, r.FirstError, r.P50, r.P99)
			}
		}
	}
	if l := e.MeasureList(5, 2); l.Errors != 0 || l.Samples != 5 || l.Tools != GatewayListServers*GatewayListTools {
		t.Errorf("tools/list: %+v", l)
	}
	if m, err := e.MeasureSessionMemory(20, 2); err != nil || m.Open == 0 || m.Listed == 0 {
		t.Errorf("session memory: %+v, %v", m, err)
	}
}
