package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// events are the JSON lines of an event log.
func events(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestGatewayEventParents: every MCP event the guard writes about a
// client's call names, as its parent, the event of the gateway request
// the call came in (kind http, door gateway), as the proxy's MCP events
// name their HTTP exchange, over Streamable HTTP and over the 2024-11-05
// transport (whose handler sees no header); a client's claim of that id,
// in the header or in _meta, is replaced, never believed.
func TestGatewayEventParents(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(map[bool]string{false: "streamable", true: "2024-11-05"}[legacy], func(t *testing.T) {
			f := newFixture(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			forged := "forged-parent"
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.Header.Set(RequestHeader, forged)
				return http.DefaultTransport.RoundTrip(r)
			})}
			var tr sdk.Transport = &sdk.StreamableClientTransport{Endpoint: f.url, HTTPClient: hc}
			if legacy {
				tr = &sdk.SSEClientTransport{Endpoint: f.url, HTTPClient: hc}
			}
			c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
			cs, err := c.Connect(ctx, tr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			meta := sdk.Meta{metaRequest: forged}
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Meta: meta, Name: "up.echo", Arguments: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Meta: meta, Name: "up.delete_project", Arguments: map[string]any{}}); err == nil {
				t.Fatal("the denied tool was called")
			}
			// The request events are written when the request is
			// answered: wait for those of both calls.
			var evs []map[string]any
			requests := map[string]map[string]any{}
			parents := func() (calls int, missing []map[string]any) {
				for _, e := range evs {
					if e["kind"] != "mcp" || e["method"] != "tools/call" {
						continue
					}
					calls++
					if p, _ := e["parent"].(string); requests[p] == nil || p == forged {
						missing = append(missing, e)
					}
				}
				return calls, missing
			}
			for deadline := time.Now().Add(10 * time.Second); ; {
				evs = events(t, f.log.String())
				for _, e := range evs {
					if e["kind"] == "http" && e["door"] == Door {
						requests[e["id"].(string)] = e
					}
				}
				if calls, missing := parents(); (calls >= 2 && len(missing) == 0) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			calls, missing := parents()
			if calls < 2 {
				t.Fatalf("%d tools/call events\n%s", calls, f.log.String())
			}
			for _, e := range missing {
				t.Errorf("%s of %v: parent %v is no gateway request's event\n%s", e["decision"], e["tool"], e["parent"], f.log.String())
			}
			for _, e := range evs {
				if e["kind"] == "mcp" && e["method"] == "tools/call" {
					if req := requests[e["parent"].(string)]; req["method"] != http.MethodPost || req["agent"] != e["agent"] || req["decision"] != "allow" {
						t.Errorf("the request event %v of the call event %v", req, e)
					}
				}
			}
		})
	}
}

// TestGatewayRequestMetaNotSent: the _meta key that carries a 2024-11-05
// request's event id (set by the gateway, or forged by a client) never
// reaches a server.
func TestGatewayRequestMetaNotSent(t *testing.T) {
	up := sdk.NewServer(&sdk.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&sdk.Tool{Name: "meta", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			b, _ := json.Marshal(req.Params.Meta)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}}, nil
		})
	url, _ := gatewayTo(t, sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, nil), "")
	for _, legacy := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var tr sdk.Transport = &sdk.StreamableClientTransport{Endpoint: url}
		if legacy {
			tr = &sdk.SSEClientTransport{Endpoint: url}
		}
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Meta: sdk.Meta{metaRequest: "forged", "mine": "kept"}, Name: "meta"})
		if err != nil {
			t.Fatal(err)
		}
		got := res.Content[0].(*sdk.TextContent).Text
		if strings.Contains(got, metaRequest) || !strings.Contains(got, `"mine":"kept"`) {
			t.Errorf("legacy %v: the server saw _meta %s", legacy, got)
		}
	}
}
