package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestGatewayLegacyUpstream: a server that speaks only the 2024-11-05
// HTTP+SSE transport (the Go SDK's SSE handler) refuses the gateway's
// Streamable HTTP initialize with a 4xx; the gateway falls back as the
// spec says (GET, the endpoint event) and serves its tools to clients of
// every revision, call after call, each decided by the guard.
func TestGatewayLegacyUpstream(t *testing.T) {
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(rev, func(t *testing.T) {
			var runs, denied atomic.Int64
			up := sdk.NewServer(&sdk.Implementation{Name: "old", Version: "1"}, nil)
			up.AddTool(&sdk.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)},
				func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
					runs.Add(1)
					return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "old " + string(req.Params.Arguments)}}}, nil
				})
			up.AddTool(&sdk.Tool{Name: "delete_project", InputSchema: json.RawMessage(`{"type":"object"}`)},
				func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
					denied.Add(1)
					return &sdk.CallToolResult{}, nil
				})
			h := sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return up }, &sdk.SSEOptions{DisableLocalhostProtection: true})
			var gets atomic.Int64 // streams opened: one, for the session
			counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					gets.Add(1)
				}
				h.ServeHTTP(w, r)
			})
			url, log := gatewayTo(t, counted, "  tools:\n    - deny: up.delete_project\n      id: no-delete\n")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
			cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url}, &sdk.ClientSessionOptions{ProtocolVersion: rev})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			lt, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v\n%s", err, log.String())
			}
			if len(lt.Tools) != 1 || lt.Tools[0].Name != "echo" {
				t.Fatalf("tools: %+v\n%s", lt.Tools, log.String())
			}
			// Calls in requests of their own: the old transport's stream
			// outlives the request that opened it.
			for i := range 2 {
				res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"n": i}})
				if err != nil {
					t.Fatalf("call %d: %v\n%s", i, err, log.String())
				}
				if got := res.Content[0].(*sdk.TextContent).Text; !strings.HasPrefix(got, "old ") {
					t.Fatalf("call %d: %q", i, got)
				}
			}
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "delete_project", Arguments: map[string]any{}}); err == nil {
				t.Fatal("the denied tool was called")
			}
			// A later call the server ran: the denied one was decided first.
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
			if n := gets.Load(); n != 1 {
				t.Errorf("%d streams opened for one session", n)
			}
			if runs.Load() != 3 || denied.Load() != 0 {
				t.Fatalf("the server ran echo %d times and the denied tool %d times", runs.Load(), denied.Load())
			}
			legacy, deny := 0, 0
			for _, e := range events(t, log.String()) {
				if e["action"] == ActionLegacy && e["server"] == "up" {
					legacy++
				}
				if e["rule"] == "no-delete" && e["decision"] == "deny" {
					deny++
				}
			}
			if legacy != 1 || deny != 1 {
				t.Fatalf("%d legacy-transport events, %d denials\n%s", legacy, deny, log.String())
			}
		})
	}
}
