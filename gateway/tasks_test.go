package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestTaskPathRefusesRebinding: the task path is served before the SDK's
// handler, so it refuses what the SDK's DNS rebinding guard refuses: a
// request to the loopback gateway whose Host is another name, even with
// a valid session.
func TestTaskPathRefusesRebinding(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: f.url}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for _, tc := range []struct {
		host string
		want int
	}{{"rebound.example", http.StatusForbidden}, {"", http.StatusOK}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.url,
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tasks/list","params":{}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", cs.ID())
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost": true, "LOCALHOST:3130": true, "127.0.0.1:80": true, "[::1]:3130": true, "::1": true, "127.9.9.9": true,
		"example.com": false, "localhost.example:80": false, "10.0.0.1": false, "": false, "[::ffff:127.0.0.1]:1": true,
	} {
		if got := loopbackHost(h); got != want {
			t.Errorf("loopbackHost(%q) = %v", h, got)
		}
	}
}
