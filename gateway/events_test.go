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
// name their HTTP exchange; a client's claim of that id in its own
// header is replaced, never believed.
func TestGatewayEventParents(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	forged := "forged-parent"
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set(RequestHeader, forged)
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: f.url, HTTPClient: hc}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.delete_project", Arguments: map[string]any{}}); err == nil {
		t.Fatal("the denied tool was called")
	}
	// The request events are written when the request is answered: wait
	// for the denied call's (the last call, answered last).
	var evs []map[string]any
	requests := map[string]map[string]any{}
	for deadline := time.Now().Add(10 * time.Second); ; {
		evs = events(t, f.log.String())
		for _, e := range evs {
			if e["kind"] == "http" && e["door"] == Door {
				requests[e["id"].(string)] = e
			}
		}
		if len(requests) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	calls := 0
	for _, e := range evs {
		if e["kind"] != "mcp" || e["method"] != "tools/call" {
			continue
		}
		calls++
		p, _ := e["parent"].(string)
		req, ok := requests[p]
		if !ok || p == forged {
			t.Errorf("%s of %v: parent %q is no gateway request's event\n%s", e["decision"], e["tool"], p, f.log.String())
			continue
		}
		if req["method"] != http.MethodPost || req["agent"] != e["agent"] || req["decision"] != "allow" {
			t.Errorf("the request event %v of the call event %v", req, e)
		}
	}
	if calls < 2 {
		t.Fatalf("%d tools/call events\n%s", calls, f.log.String())
	}
}
