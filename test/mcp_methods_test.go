package test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 6: MCP's messages travel only as POST bodies. An HTTP
// upgrade on a governed server handed the connection to a protocol no
// rule reads (the forwarder relays upgrades), and a body on a GET,
// DELETE, OPTIONS or HEAD went to the server unread. The server here is
// the official Go SDK's, over Streamable HTTP on /mcp and, after an
// upgrade on /ws, over the upgraded connection (newline-delimited
// JSON-RPC, the SDK's IOTransport), both counting calls of one tool set.

// upgradeServer is an SDK server reachable by POST and by upgrade, and a
// recorder of the bodies other methods brought.
type upgradeServer struct {
	*testenv.Upstream
	calls  sync.Map     // tool name -> *atomic.Int64
	bodies atomic.Int64 // bodies other methods brought to a governed name
	other  atomic.Int64 // and to other.test, which no servers entry names
}

func (u *upgradeServer) count(tool string) int64 {
	v, _ := u.calls.LoadOrStore(tool, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func startUpgradeServer(t *testing.T) *upgradeServer {
	u := &upgradeServer{}
	srv := mcp.NewServer(&mcp.Implementation{Name: "upgrade-peer", Version: "1"}, nil)
	for _, name := range []string{"echo", "delete_project"} {
		mcp.AddTool(srv, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
			v, _ := u.calls.LoadOrStore(name, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " ran"}}}, nil, nil
		})
	}
	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, DisableLocalhostProtection: true})
	u.Upstream = testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ws" && r.Header.Get("Upgrade") != "":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + r.Header.Get("Upgrade") + "\r\n\r\n")
			brw.Flush()
			go srv.Run(context.Background(), &mcp.IOTransport{Reader: readCloser{brw.Reader, conn}, Writer: conn})
		case r.Method == http.MethodPost:
			streamable.ServeHTTP(w, r)
		default:
			if b, _ := io.ReadAll(r.Body); len(b) > 0 {
				if strings.HasPrefix(r.Host, "other.test") {
					u.other.Add(1)
				} else {
					u.bodies.Add(1)
				}
			}
			w.WriteHeader(http.StatusNoContent)
		}
	})})
	t.Cleanup(u.Close)
	return u
}

type readCloser struct {
	io.Reader
	io.Closer
}

const upgradePolicy = `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [mcp.test, ws.test, other.test, path.test]
resolve:
  mcp.test: [127.0.0.1]
  ws.test: [127.0.0.1]
  other.test: [127.0.0.1]
  path.test: [127.0.0.1]
mcp:
  default: allow
  unknown_servers: deny
  servers:
    - name: srv
      url: "mcp.test/**"
    - name: wsok
      url: "ws.test/**"
      websocket: allow
    - name: pathsrv
      url: "path.test/mcp/**"
  tools:
    - deny: "*.delete_project"
      id: no-delete
`

// upgradeThrough asks agentg (at proxy) for an upgrade to host's /ws and,
// when it is granted, calls tool over the connection with the SDK client.
func upgradeThrough(t *testing.T, proxy, host, tool string) (status int, err error) {
	t.Helper()
	conn, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "GET http://"+host+"/ws HTTP/1.1\r\nHost: "+host+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	cl := mcp.NewClient(&mcp.Implementation{Name: "upgrade-client", Version: "1"}, nil)
	cs, err := cl.Connect(mcpCtx(t), &mcp.IOTransport{Reader: readCloser{br, conn}, Writer: conn}, nil)
	if err != nil {
		return resp.StatusCode, err
	}
	defer cs.Close()
	_, err = cs.CallTool(mcpCtx(t), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}})
	return resp.StatusCode, err
}

func TestMCPUpgradeRefused(t *testing.T) {
	u := startUpgradeServer(t)
	e := startProxy(t, upgradePolicy, nil)
	hc := e.client("", "", nil)
	// Directly, the upgraded connection runs the tool.
	if st, err := upgradeThrough(t, u.Listener.Addr().String(), "mcp.test:"+u.Port, "delete_project"); st != 101 || err != nil || u.count("delete_project") != 1 {
		t.Fatalf("directly: %d %v, delete ran %d times: the case tests nothing", st, err, u.count("delete_project"))
	}
	st, err := upgradeThrough(t, e.addr, "mcp.test:"+u.Port, "delete_project")
	// A later allowed call through agentg, which the same server counts.
	if s, b := intakePost(t, hc, "http://mcp.test:"+u.Port+"/mcp", []string{"application/json"}, []byte(callBody("tools/call", "echo"))); s != 200 || !strings.Contains(b, "echo ran") {
		t.Fatalf("the marker call: %d %s", s, b)
	}
	if u.count("echo") != 1 {
		t.Fatalf("the marker call did not reach the server")
	}
	if n := u.count("delete_project"); n != 1 || st != http.StatusForbidden {
		t.Fatalf("an upgrade to a governed server through agentg: status %d (%v), delete ran %d times in all, want 403 and once (directly)", st, err, n)
	}
	waitMCPEvent(t, e, map[string]any{"rule": "builtin:mcp-upgrade", "decision": "deny"})
	// On a path the entry's glob does not cover, the host is still the
	// server's: the upgrade is refused all the same.
	if st, err := upgradeThrough(t, e.addr, "path.test:"+u.Port, "delete_project"); st != http.StatusForbidden || u.count("delete_project") != 1 {
		t.Fatalf("an upgrade to /ws of a governed host (entry path.test/mcp/**): %d %v, delete ran %d times in all", st, err, u.count("delete_project"))
	}
	// A server whose entry says websocket: allow gets the upgrade.
	if st, err := upgradeThrough(t, e.addr, "ws.test:"+u.Port, "echo"); st != 101 || err != nil || u.count("echo") != 2 {
		t.Fatalf("websocket: allow: %d %v, echo ran %d times", st, err, u.count("echo"))
	}
}

func TestMCPBodyOnOtherMethods(t *testing.T) {
	u := startUpgradeServer(t)
	e := startProxy(t, upgradePolicy, nil)
	hc := e.client("", "", nil)
	body := callBody("tools/call", "delete_project")
	for _, method := range []string{"GET", "DELETE", "OPTIONS"} {
		for _, chunked := range []bool{false, true} {
			req, _ := http.NewRequest(method, "http://mcp.test:"+u.Port+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if chunked {
				req.ContentLength = -1
				req.TransferEncoding = []string{"chunked"}
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "builtin:mcp-method") {
				t.Errorf("%s with a body (chunked %v): %d %s, want 400 refused", method, chunked, resp.StatusCode, b)
			}
		}
		// Without a body it passes: the marker the server sees.
		req, _ := http.NewRequest(method, "http://mcp.test:"+u.Port+"/mcp", nil)
		if method == "GET" {
			req.Header.Set("Accept", "text/event-stream")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("%s without a body: %d, want the server's 204", method, resp.StatusCode)
		}
	}
	// An empty chunked body is no body.
	req, _ := http.NewRequest("DELETE", "http://mcp.test:"+u.Port+"/mcp", strings.NewReader(""))
	req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE with an empty chunked body: %v %v", resp, err)
	}
	if n := u.bodies.Load(); n != 0 {
		t.Fatalf("%d bodies on GET, DELETE or OPTIONS reached the governed server", n)
	}
}

// On a host no servers entry names, a body on another method than POST
// reaches the guard when the request says MCP (an Mcp-* header): it is
// read, refused when it may be JSON-RPC, and passes when it cannot be.
func TestMCPBodyOnOtherMethodsUnnamed(t *testing.T) {
	u := startUpgradeServer(t)
	e := startProxy(t, upgradePolicy, nil)
	hc := e.client("", "", nil)
	send := func(method, body string) int {
		req, _ := http.NewRequest(method, "http://other.test:"+u.Port+"/mcp", strings.NewReader(body))
		req.Header.Set("Mcp-Session-Id", "s1")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, method := range []string{"GET", "DELETE", "PUT"} {
		if st := send(method, `{"jsonrp\u0063":"2.0","id":1,"method":"tools/call","params":{"name":"delete_project"}}`); st != http.StatusBadRequest {
			t.Errorf("%s with a JSON-RPC body to an unnamed host: %d, want 400", method, st)
		}
		// The marker: a body no reader takes for JSON-RPC passes.
		if st := send(method, "plain text"); st != http.StatusNoContent {
			t.Errorf("%s with a plain body to an unnamed host: %d, want the server's 204", method, st)
		}
	}
	if n := u.other.Load(); n != 3 {
		t.Fatalf("%d bodies reached the unnamed host, want the 3 plain ones", n)
	}
}
