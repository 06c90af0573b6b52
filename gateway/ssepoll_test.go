package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// gatewayTo serves a gateway in front of the one upstream handler up
// (named "up", no prefix) and returns its MCP URL and event log.
func gatewayTo(t *testing.T, up http.Handler, extra string) (string, *syncBuffer) {
	t.Helper()
	us := httptest.NewServer(up)
	t.Cleanup(us.Close)
	e, err := rules.Parse("test.yaml", []byte("mcp:\n  servers:\n    - name: up\n      endpoint: "+us.URL+"/mcp\n      prefix: \"\"\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	log := audit.New(buf)
	store, err := state.NewMemory(state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	guard := &mcp.Guard{Log: log, State: store, Limits: limit.NewRates(limit.Options{})}
	gw, err := New(Config{Policy: func() *rules.Engine { return e }, Guard: guard, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(gw)
	t.Cleanup(func() { gs.CloseClientConnections(); gs.Close(); gw.Close() })
	return gs.URL + Path, buf
}

// sseEvent is one event of an SSE stream as a client reads it.
type sseEvent struct{ id, retry, data string }

// readSSE reads body's events until it ends (or stop says so).
func readSSE(t *testing.T, body *bufio.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	var ev sseEvent
	for {
		line, err := body.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if k, v, ok := strings.Cut(line, ":"); ok && k != "" {
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "retry":
				ev.retry = v
			case "data":
				ev.data += v
			}
		}
		if line == "" && (ev != sseEvent{}) {
			out = append(out, ev)
			if stop != nil && stop(ev) {
				return out
			}
			ev = sseEvent{}
		}
		if err != nil {
			return out
		}
	}
}

// TestGatewaySSEPolling: an upstream that closes a call's stream
// mid-call with a retry field (2025-11-25, SEP-1699). Without an event
// store (no ids: the stream cannot be resumed) the client's stream
// through the gateway ends as the server's does direct: the retry field,
// no answer. With one, the gateway's client resumes upstream and the
// answer comes on the client's open stream.
func TestGatewaySSEPolling(t *testing.T) {
	for _, tc := range []struct {
		name      string
		store     bool
		wantRetry string // the retry field the client's stream ends with
		wantText  string // the answer on the client's stream
	}{
		{name: "no-event-store", wantRetry: "10"},
		{name: "event-store", store: true, wantText: "resumed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := sdk.NewServer(&sdk.Implementation{Name: "up", Version: "1"}, nil)
			up.AddTool(&sdk.Tool{Name: "reconnect", InputSchema: json.RawMessage(`{"type":"object"}`)},
				func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
					if req.Extra != nil && req.Extra.CloseSSEStream != nil {
						req.Extra.CloseSSEStream(sdk.CloseSSEStreamArgs{RetryAfter: 10 * time.Millisecond})
					}
					time.Sleep(100 * time.Millisecond)
					return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "resumed"}}}, nil
				})
			opts := &sdk.StreamableHTTPOptions{}
			if tc.store {
				opts.EventStore = sdk.NewMemoryEventStore(nil)
			}
			h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, opts)
			url, log := gatewayTo(t, h, "")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			// The session: the SDK's client's, whose id the raw POST uses.
			c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
			cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url,
				strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reconnect","arguments":{}}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", cs.ID())
			req.Header.Set("MCP-Protocol-Version", "2025-11-25")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("POST: %d %s", resp.StatusCode, ct)
			}
			evs := readSSE(t, bufio.NewReader(resp.Body), nil)
			var retry, data string
			for _, ev := range evs {
				if ev.retry != "" {
					retry = ev.retry
				}
				data += ev.data
			}
			if retry != tc.wantRetry {
				t.Errorf("the client's stream ended with retry %q, want %q: %+v", retry, tc.wantRetry, evs)
			}
			if tc.wantText != "" && !strings.Contains(data, tc.wantText) {
				t.Errorf("the client's stream lacks the answer %q: %+v\n%s", tc.wantText, evs, log.String())
			}
			if tc.wantText == "" && strings.Contains(data, `"id":1`) {
				t.Errorf("an answer on a stream the server closed: %+v", evs)
			}
		})
	}
}
