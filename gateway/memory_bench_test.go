package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// BenchmarkSessionMemory is the gateway's heap per client session, after
// a collection: idle (initialized, nothing asked), and having listed a
// catalogue of 1000 tools. The clients are raw (testenv.MCPRaw, one
// shared keep-alive HTTP client), so what they keep is next to nothing;
// the figure is the gateway's side plus its upstream sessions. bench/
// reports the RSS of agentg as its own process, which counts garbage not
// yet collected too.
func BenchmarkSessionMemory(b *testing.B) {
	const sessions = 50
	f := newFixture(b, nil)
	for i := range 999 { // with echo, 1000 tools listed
		f.up.AddTool(&sdk.Tool{Name: fmt.Sprintf("filler_%03d", i), Description: "Echoes its arguments back.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)},
			func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return &sdk.CallToolResult{}, nil
			})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hc := testenv.MCPHTTPClient(testenv.MCPClientConfig{})
	defer hc.CloseIdleConnections()
	heap := func() int64 {
		runtime.GC()
		runtime.GC() // the second frees what finalizers of the first released
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	open := func(list bool) []*testenv.MCPRaw {
		rs := make([]*testenv.MCPRaw, sessions)
		for i := range rs {
			rs[i] = testenv.NewMCPRaw(hc, testenv.MCPStateful, f.url, "2025-11-25")
			if err := rs[i].Open(ctx); err != nil {
				b.Fatal(err)
			}
			if list {
				rep, err := rs[i].Call(ctx, `"l"`, "tools/list", map[string]any{})
				if err != nil || rep.ByID(`"l"`) == nil {
					b.Fatalf("tools/list: %v %.200s", err, rep.Body)
				}
			}
		}
		return rs
	}
	for b.Loop() {
		base := heap()
		idle := open(false)
		withIdle := heap()
		listed := open(true)
		withListed := heap()
		b.ReportMetric(float64(withIdle-base)/sessions, "B/idle-session")
		b.ReportMetric(float64(withListed-withIdle)/sessions, "B/listed-session")
		runtime.KeepAlive(idle)
		runtime.KeepAlive(listed)
	}
}
