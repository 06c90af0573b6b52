package test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7, detection: on a host agentg sees into, "a response that is an
// MCP SSE stream" is MCP, and MCP on a host no mcp.servers entry names
// falls under mcp.unknown_servers. A 2024-11-05 HTTP+SSE client's GET
// says nothing of MCP; the stream's first event, "endpoint", does. agentg
// peeks at that first event only: an MCP stream is decided and dissected
// (denied calls answered on it, results redacted on it), anything else
// passes event by event, re-framed (issue 14), until an endpoint event
// comes after all: the stream is judged then.

func detectPolicy(unknown string) string {
	return mcpPolicy(`
mcp:
  default: allow
  unknown_servers: ` + unknown + `
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
  tools:
    - deny: "*.delete_project"
      id: no-delete-anywhere
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [results]
      id: aws-keys
`)
}

func TestMCPDetectLegacyStream(t *testing.T) {
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	start := func(t *testing.T, unknown string) (*mcpEnv, *testenv.MCPServer) {
		s := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPLegacySSE, CA: upCA, Hosts: []string{"other.test"}})
		e := &mcpEnv{env: startProxyWith(t, detectPolicy(unknown), nil, &tlsOpts{roots: upCA.Pool()}), upCA: upCA,
			peers: map[testenv.MCPMode]*testenv.MCPServer{testenv.MCPLegacySSE: s}}
		return e, s
	}
	c := mcpCase{testenv.MCPLegacySSE, "2024-11-05"}

	t.Run("allow", func(t *testing.T) {
		e, s := start(t, "allow")
		cl := e.connect(t, c, nil)
		args := map[string]any{"text": "hi"}
		res, err := callTool(t, cl, testenv.MCPToolEcho, args)
		wantEcho(t, res, err, args)
		// Denied: the error comes on the session's GET stream, as the
		// legacy client waits for it, and the tool never runs.
		res, err = callTool(t, cl, testenv.MCPToolDelete, nil)
		wantDenied(t, res, err, "no-delete-anywhere")
		if s.Calls(testenv.MCPToolDelete) != 0 {
			t.Fatal("the denied tool ran")
		}
		// The result, on the GET stream, is redacted.
		res, err = callTool(t, cl, testenv.MCPToolSecret, nil)
		if err != nil || strings.Contains(resultText(res), testenv.MCPSecret) || !strings.Contains(resultText(res), "[REDACTED:aws-keys]") {
			t.Fatalf("secret through a detected legacy session: %v %q, want the key redacted", err, resultText(res))
		}
		ev := waitMCPEvent(t, e.env, map[string]any{"action": "session-start", "revision": "2024-11-05", "rule": "mcp:unknown_servers", "decision": "allow"})
		if ev.str("host") != "other.test" || ev.str("server") != "" || !strings.Contains(ev.str("session"), "sessionid=") {
			t.Errorf("session-start %v: want host other.test, no server name, the endpoint as session", ev)
		}
	})

	t.Run("deny", func(t *testing.T) {
		e, s := start(t, "deny")
		cfg := e.via("", "")
		cfg.Revision = c.rev
		cl, err := testenv.ConnectMCP(mcpCtx(t), c.mode, s.URL, cfg)
		if err == nil {
			cl.Close()
			t.Fatal("a legacy MCP session on an unnamed host under unknown_servers: deny connected")
		}
		ev := waitMCPEvent(t, e.env, map[string]any{"rule": "mcp:unknown_servers", "decision": "deny"})
		if !strings.Contains(ev.str("reason"), "2024-11-05") {
			t.Errorf("refusal event %v", ev)
		}
		for _, r := range s.Requests() {
			if r.Method == http.MethodPost {
				t.Fatalf("a POST reached the refused server: %q", r.Body)
			}
		}
	})

	t.Run("not MCP", func(t *testing.T) {
		e, _ := start(t, "deny") // deny: a stream agentg took for MCP would be refused
		cert, err := upCA.Leaf([]string{"other.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		next, quiet := make(chan struct{}), make(chan struct{})
		const short = ": hello\n\n: again\r\n\r\nevent: tick\nid: 9\ndata: 1\n\n"
		const later = "event: tick\ndata: 1\n\nevent: endpoint\ndata: /not-first\n\n"
		up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Quiet: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			rc := http.NewResponseController(w)
			switch r.URL.Path {
			case "/short":
				io.WriteString(w, short)
			case "/later":
				io.WriteString(w, later)
			case "/live":
				io.WriteString(w, "event: tick\ndata: 1\n\n")
				rc.Flush()
				select {
				case <-next:
				case <-time.After(5 * time.Second):
				}
				io.WriteString(w, "data: 2\n\n")
			case "/quiet":
				w.WriteHeader(http.StatusOK)
				rc.Flush()
				select {
				case <-quiet:
				case <-time.After(5 * time.Second):
				}
				io.WriteString(w, "data: late\n\n")
			case "/big":
				io.WriteString(w, "data: "+strings.Repeat("x", 10<<10)+"\n\n")
			}
		})})
		t.Cleanup(up.Close)
		hc := testenv.MCPHTTPClient(e.via("", ""))
		t.Cleanup(hc.CloseIdleConnections)
		get := func(path string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest("GET", "https://"+up.HostPort("other.test")+path, nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d", path, resp.StatusCode)
			}
			return resp
		}
		// Event by event, re-framed (issue 14: LF line ends), comments
		// included.
		b, _ := io.ReadAll(get("/short").Body)
		if want := strings.ReplaceAll(short, "\r\n", "\n"); string(b) != want {
			t.Fatalf("a non-MCP stream came through as %q, want %q", b, want)
		}
		// Event by event: the first is read before the server sends the
		// second.
		br := bufio.NewReader(get("/live").Body)
		if ev, err := testenv.ReadSSE(br); err != nil || ev.Name != "tick" || ev.Data != "1" {
			t.Fatalf("first event %+v %v", ev, err)
		}
		close(next)
		if ev, err := testenv.ReadSSE(br); err != nil || ev.Data != "2" {
			t.Fatalf("second event %+v %v", ev, err)
		}
		// A stream that is quiet at first opens all the same.
		opened := time.Now()
		resp := get("/quiet")
		if d := time.Since(opened); d > 3*time.Second {
			t.Errorf("a quiet stream's header took %v", d)
		}
		close(quiet)
		if ev, err := testenv.ReadSSE(bufio.NewReader(resp.Body)); err != nil || ev.Data != "late" {
			t.Fatalf("quiet stream's event %+v %v", ev, err)
		}
		// A first event past the peek's bound passes whole.
		b, _ = io.ReadAll(get("/big").Body)
		if len(b) != len("data: \n\n")+10<<10 {
			t.Fatalf("a large first event came through as %d bytes", len(b))
		}
		for _, ev := range e.mcpEvents() {
			if ev.str("decision") == "deny" {
				t.Fatalf("a non-MCP stream was taken for MCP: %v", ev)
			}
		}
		// Issue 14: an endpoint event after the first makes the stream a
		// 2024-11-05 session to clients that take one anywhere (the
		// TypeScript SDK's): it is judged then, and under deny ended
		// before the endpoint reaches the client.
		b, _ = io.ReadAll(get("/later").Body)
		if string(b) != "event: tick\ndata: 1\n\n" {
			t.Fatalf("a stream with a later endpoint came through as %q under unknown_servers: deny", b)
		}
		waitMCPEvent(t, e.env, map[string]any{"rule": "mcp:unknown_servers", "decision": "deny"})
	})
}
