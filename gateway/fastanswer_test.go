package gateway

// The fast path's answers (fastanswer.go) over real sockets: a server's
// request to the client, a polled stream resumed, a refusal's body,
// cancellation; with the real guard and the Go SDK on both sides.

import (
	"context"
	"encoding/json"
	"io"
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

// A server that asks the client something during a call gets the
// client's answer on the fast path too.
func TestFastCallServerAsksTheClient(t *testing.T) {
	f := newToolsFixture(t, nil, fastTools)
	f.up.AddTool(&sdk.Tool{Name: "ask", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			r, err := req.Session.CreateMessage(ctx, &sdk.CreateMessageParams{MaxTokens: 5,
				Messages: []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: "hi"}}}})
			if err != nil {
				return nil, err
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "model said " + r.Content.(*sdk.TextContent).Text}}}, nil
		})
	cs := fastSession(t, f, "2025-11-25", &sdk.ClientOptions{
		CreateMessageHandler: func(context.Context, *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
			return &sdk.CreateMessageResult{Model: "m", Role: "assistant", Content: &sdk.TextContent{Text: "hello"}}, nil
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := f.gw.FastCalls()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.ask", Arguments: map[string]any{}})
	if err != nil || text(t, res) != "model said hello" {
		t.Fatalf("ask: %+v %v", res, err)
	}
	if f.gw.FastCalls() != before+1 {
		t.Fatal("the call did not take the fast path")
	}
}

// A client that cancels a call on the fast path cancels it at the
// server, as it would through the SDK path.
func TestFastCallCancelled(t *testing.T) {
	f := newToolsFixture(t, nil, fastTools)
	started, cancelled := make(chan struct{}, 1), make(chan struct{})
	f.up.AddTool(&sdk.Tool{Name: "wait", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				close(cancelled)
				return nil, ctx.Err()
			case <-time.After(20 * time.Second):
				return &sdk.CallToolResult{}, nil
			}
		})
	cs := fastSession(t, f, "2025-11-25", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := f.gw.FastCalls()
	callCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(callCtx, &sdk.CallToolParams{Name: "up.wait", Arguments: map[string]any{}})
		done <- err
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the tool never started")
	}
	stop()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's tool was not cancelled")
	}
	if err := <-done; err == nil {
		t.Fatal("the cancelled call returned no error")
	}
	if f.gw.FastCalls() != before+1 {
		t.Fatal("the call did not take the fast path")
	}
	// The session goes on.
	if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{}}); err != nil || text(t, res) != `echo{}` {
		t.Fatalf("echo: %+v %v", res, err)
	}
}

// A client's notifications/cancelled for a fast call (its POST still
// open) cancels it at the server: the SDK's server does not know the
// call, so the fast path must.
func TestFastCallCancelledByNotification(t *testing.T) {
	f := newToolsFixture(t, byHeader{}, fastTools)
	started, cancelled := make(chan struct{}, 1), make(chan struct{})
	f.up.AddTool(&sdk.Tool{Name: "wait", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				close(cancelled)
				return nil, ctx.Err()
			case <-time.After(20 * time.Second):
				return &sdk.CallToolResult{}, nil
			}
		})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := connectAs(t, ctx, f, "a", nil)
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	before := f.gw.FastCalls()
	go func() {
		if resp, err := rawPost(f.url, cs.ID(), "a", `{"jsonrpc":"2.0","id":"w-1","method":"tools/call","params":{"name":"up.wait","arguments":{}}}`); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the tool never started")
	}
	resp, err := rawPost(f.url, cs.ID(), "a", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"w-1"}}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/cancelled: %s", resp.Status)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's tool was not cancelled")
	}
	if f.gw.FastCalls() != before+1 {
		t.Fatal("the call did not take the fast path")
	}
}

// A server that closes a call's stream for the client to come back
// (2025-11-25 SSE polling) is resumed with Last-Event-ID, as the SDK
// client resumes it, and the call's answer still reaches the client.
func TestFastCallResumesPolledStream(t *testing.T) {
	f := &fixture{log: &syncBuffer{}}
	up := sdk.NewServer(&sdk.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&sdk.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo"}}}, nil
		})
	up.AddTool(&sdk.Tool{Name: "poll", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			f.runs.Add(1)
			req.Extra.CloseSSEStream(sdk.CloseSSEStreamArgs{RetryAfter: 10 * time.Millisecond})
			time.Sleep(50 * time.Millisecond)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "after the poll"}}}, nil
		})
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, &sdk.StreamableHTTPOptions{EventStore: sdk.NewMemoryEventStore(nil)})
	gatewayFor(t, f, h)
	cs := fastSession(t, f, "2025-11-25", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := f.gw.FastCalls()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.poll", Arguments: map[string]any{}})
	if err != nil || text(t, res) != "after the poll" {
		t.Fatalf("poll: %+v %v\n%s", res, err, f.log.String())
	}
	if f.gw.FastCalls() != before+1 || f.runs.Load() != 1 {
		t.Fatalf("%d fast calls, %d runs", f.gw.FastCalls()-before, f.runs.Load())
	}
}

// gatewayFor puts a gateway (no tool rules) in front of the upstream h
// as server "up", into f.
func gatewayFor(t *testing.T, f *fixture, h http.Handler) { gatewayWith(t, f, h, 0) }

// gatewayWith is gatewayFor with the client sessions' idle timeout.
func gatewayWith(t *testing.T, f *fixture, h http.Handler, idle time.Duration) {
	t.Helper()
	us := httptest.NewServer(h)
	t.Cleanup(us.Close)
	e, err := rules.Parse("test.yaml", []byte("mcp:\n  servers:\n    - name: up\n      endpoint: "+us.URL+"/mcp\n"))
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(f.log)
	st, err := state.NewMemory(state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.gw, err = New(Config{Policy: func() *rules.Engine { return e }, Guard: &mcp.Guard{Log: log, State: st, Limits: limit.NewRates(limit.Options{})}, Log: log,
		SessionTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(f.gw)
	t.Cleanup(func() { gs.CloseClientConnections(); gs.Close(); f.gw.Close() })
	f.url = gs.URL + Path
}

// A server's refusal with a status and a JSON-RPC error reaches the
// client as that error, on the fast path as through the SDK path.
func TestFastCallRefusalBody(t *testing.T) {
	f := &fixture{log: &syncBuffer{}}
	up := sdk.NewServer(&sdk.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&sdk.Tool{Name: "refused", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			f.runs.Add(1)
			return &sdk.CallToolResult{}, nil
		})
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, nil)
	gatewayFor(t, f, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") != "" {
			b, _ := io.ReadAll(r.Body)
			var m struct {
				ID     json.RawMessage `json:"id"`
				Params struct {
					Arguments struct {
						NullID bool `json:"nullID"`
					} `json:"arguments"`
				} `json:"params"`
			}
			if json.Unmarshal(b, &m) == nil && strings.Contains(string(b), `"refused"`) {
				if m.Params.Arguments.NullID {
					m.ID = json.RawMessage("null")
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(m.ID)+`,"error":{"code":-32001,"message":"not you","data":{"why":"quota"}}}`)
				return
			}
			r.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		h.ServeHTTP(w, r)
	}))
	cs := fastSession(t, f, "2025-11-25", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// With the request's id, the server's error is the client's; with
	// null, the SDK client reads none, and says the status.
	for _, c := range []struct {
		nullID bool
		want   string
	}{{false, "not you"}, {true, "Forbidden"}} {
		before := f.gw.FastCalls()
		args := map[string]any{"nullID": c.nullID}
		_, fastErr := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.refused", Arguments: args})
		_, slowErr := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.refused", Arguments: args, Meta: sdk.Meta{"progressToken": "p"}})
		if f.gw.FastCalls() != before+1 || f.runs.Load() != 0 {
			t.Fatalf("%d fast calls, %d runs", f.gw.FastCalls()-before, f.runs.Load())
		}
		if fastErr == nil || slowErr == nil || fastErr.Error() != slowErr.Error() || !strings.Contains(fastErr.Error(), c.want) {
			t.Errorf("refusals: fast %v, SDK path %v", fastErr, slowErr)
		}
	}
}
