package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// The gateway in process, between the Go SDK's client and a Go SDK
// server on loopback, with the real guard: what test/ checks end to end
// with agentg as its own process, here under the race detector.

// syncBuffer is the event log, read while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	gw    *Gateway
	url   string
	log   *syncBuffer
	runs  atomic.Int64 // the upstream's tool runs
	hits  atomic.Int64 // HTTP requests the upstream received
	store *state.Memory
	up    *sdk.Server // the upstream
}

// newFixture serves one upstream (tools echo and delete_project, the
// latter denied by the policy) behind a gateway using auth.
func newFixture(t testing.TB, auth Authenticator) *fixture {
	t.Helper()
	return newToolsFixture(t, auth, "    - deny: up.delete_project\n      id: no-delete\n")
}

// newToolsFixture is newFixture under the tool rules tools (YAML list
// items of mcp.tools).
func newToolsFixture(t testing.TB, auth Authenticator, tools string) *fixture {
	t.Helper()
	f := &fixture{log: &syncBuffer{}}
	up := sdk.NewServer(&sdk.Implementation{Name: "up", Version: "1"}, nil)
	for _, name := range []string{"echo", "delete_project"} {
		up.AddTool(&sdk.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				f.runs.Add(1)
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: name + string(req.Params.Arguments)}}}, nil
			})
	}
	f.up = up
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, nil)
	us := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(us.Close)
	e, err := rules.Parse("test.yaml", []byte("mcp:\n  servers:\n    - name: up\n      endpoint: "+us.URL+"/mcp\n  tools:\n"+tools))
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(f.log)
	if f.store, err = state.NewMemory(state.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	guard := &mcp.Guard{Log: log, State: f.store, Limits: limit.NewRates(limit.Options{})}
	f.gw, err = New(Config{Policy: func() *rules.Engine { return e }, Guard: guard, Log: log, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(f.gw)
	t.Cleanup(func() { gs.CloseClientConnections(); gs.Close(); f.gw.Close() })
	f.url = gs.URL + Path
	return f
}

func TestGatewayCallsThroughTheGuard(t *testing.T) {
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(rev, func(t *testing.T) {
			f := newFixture(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
			cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: f.url}, &sdk.ClientSessionOptions{ProtocolVersion: rev})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			lt, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(lt.Tools) != 1 || lt.Tools[0].Name != "up.echo" {
				t.Fatalf("tools: %+v\n%s", lt.Tools, f.log.String())
			}
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{"a": 1}})
			if err != nil || res.Content[0].(*sdk.TextContent).Text != `echo{"a":1}` {
				t.Fatalf("up.echo: %+v %v", res, err)
			}
			_, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.delete_project", Arguments: map[string]any{}})
			if err == nil {
				t.Fatal("the denied tool was called")
			}
			if f.runs.Load() != 1 {
				t.Fatalf("the upstream ran %d tools, want 1", f.runs.Load())
			}
			if !strings.Contains(f.log.String(), `"rule":"no-delete"`) || !strings.Contains(f.log.String(), `"door":"gateway"`) {
				t.Errorf("no deny event of the guard's:\n%s", f.log.String())
			}
		})
	}
}

type refuse struct{}

func (refuse) Authenticate(*http.Request, *rules.Engine) (Who, error) {
	return Who{}, errors.New("no valid credentials")
}
func (refuse) Challenge() string { return `Bearer realm="agentg", error="invalid_token"` }

// TestGatewayRefusesUnauthenticated: a request the Authenticator refuses
// gets 401 with the challenge, an event, and reaches no upstream.
func TestGatewayRefusesUnauthenticated(t *testing.T) {
	f := newFixture(t, refuse{})
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{}}}`
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if f.hits.Load() != 0 || f.runs.Load() != 0 {
		t.Fatalf("the upstream got %d requests", f.hits.Load())
	}
	if !strings.Contains(f.log.String(), `"rule":"builtin:gateway-auth"`) {
		t.Errorf("no refusal event:\n%s", f.log.String())
	}
}

// TestGatewayRefusesForeignHost: on loopback, a Host that is not
// loopback's name is refused (a web page reaching the gateway through a
// name that resolves to 127.0.0.1), before any upstream is asked.
func TestGatewayRefusesForeignHost(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
	req.Host = "rebind.example"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	if f.hits.Load() != 0 {
		t.Fatalf("the upstream got %d requests", f.hits.Load())
	}
}

func TestGatewayServesOnePath(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get(strings.TrimSuffix(f.url, Path) + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestIdleSessionMemory reports the heap one idle client session holds
// (a 2025-11-25 session that listed the tools: its SDK server, catalogue
// and one upstream session), for the bench report; it asserts only a
// generous bound.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measures")
	}
	f := newFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(n int) []*sdk.ClientSession {
		var out []*sdk.ClientSession
		for range n {
			c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
			cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: f.url}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cs.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}
			out = append(out, cs)
		}
		return out
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	warm := open(5)
	before := heap()
	const n = 50
	sessions := open(n)
	after := heap()
	per := int64(after-before) / n
	// Both ends are in this process: the client's session and the
	// upstream server's are counted too, so this is an upper bound.
	t.Logf("heap per idle gateway session (with its client and upstream peers in process): %d KiB", per/1024)
	if per > 4<<20 {
		t.Errorf("%d bytes per idle session", per)
	}
	for _, cs := range append(warm, sessions...) {
		cs.Close()
	}
}

// TestGatewayForwardHook: a server served in process behind
// Config.Forward (how a stdio child plugs in) meets the same guard: its
// allowed tool runs, its denied one is refused with the rule and never
// runs, and nothing is dialed.
func TestGatewayForwardHook(t *testing.T) {
	var runs atomic.Int64
	up := sdk.NewServer(&sdk.Implementation{Name: "child", Version: "1"}, nil)
	for _, name := range []string{"echo", "delete_project"} {
		up.AddTool(&sdk.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
			func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				runs.Add(1)
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: name}}}, nil
			})
	}
	child := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, &sdk.StreamableHTTPOptions{DisableLocalhostProtection: true})
	e, err := rules.Parse("test.yaml", []byte("mcp:\n  servers:\n    - name: kid\n      endpoint: http://child.invalid/mcp\n      prefix: \"\"\n  tools:\n    - deny: kid.delete_project\n      id: no-delete\n"))
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuffer{}
	log := audit.New(logBuf)
	st, err := state.NewMemory(state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dialed := false
	gw, err := New(Config{Policy: func() *rules.Engine { return e }, Guard: &mcp.Guard{Log: log, State: st, Limits: limit.NewRates(limit.Options{})}, Log: log,
		Client:  &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { dialed = true; return nil, errors.New("no network") })},
		Forward: func(b rules.ServerBinding) http.Handler { return child }})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(gw)
	defer func() { gs.CloseClientConnections(); gs.Close(); gw.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &sdk.StreamableClientTransport{Endpoint: gs.URL + Path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{}}); err != nil || res.Content[0].(*sdk.TextContent).Text != "echo" {
		t.Fatalf("echo: %+v %v", res, err)
	}
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "delete_project", Arguments: map[string]any{}}); err == nil {
		t.Fatal("the denied tool was called")
	}
	if runs.Load() != 1 || dialed {
		t.Fatalf("runs %d, dialed %v", runs.Load(), dialed)
	}
	if !strings.Contains(logBuf.String(), `"rule":"no-delete"`) {
		t.Errorf("no deny event:\n%s", logBuf.String())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
