package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/gateway/child"
	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17, stdio servers agentg starts (command:): the supervisor runs
// the Go SDK stdio server with proxy credentials of its own; driven
// through the child interface and the guard's stream session (the
// gateway door's way in), its egress meets the floor under its own name,
// with server and caused_by on the events, and only to its egress list;
// killed mid-call, the caller gets an error and the supervisor a restart.

func childPolicy(bin, marks, secretEnv string) string {
	return fmt.Sprintf(`
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [api.egress.test, other.egress.test]
resolve:
  api.egress.test: [127.0.0.1]
  other.egress.test: [127.0.0.1]
credentials:
  secrets:
    tok: {env: %s}
mcp:
  servers:
    - name: files
      command: [%q]
      env:
        STDIOSERVER_MARKS: %q
        STDIOSERVER_PRINT_ENV: FILES_TOKEN
        FILES_TOKEN: {secret: tok}
      egress: [api.egress.test]
`, secretEnv, bin, marks)
}

// stdioClient speaks raw JSON-RPC to a child through a guard session, as
// the gateway door does.
type stdioClient struct {
	t    *testing.T
	sess *mcp.Session
	in   chan []byte
	next atomic.Int64
}

func newStdioClient(t *testing.T, e *env, proc *child.Proc) *stdioClient {
	return newStdioClientOf(t, e, proc, "files")
}

func newStdioClientOf(t *testing.T, e *env, proc *child.Proc, server string) *stdioClient {
	c := &stdioClient{t: t, in: make(chan []byte, 64)}
	c.sess = child.Attach(e.app.Guard(), mcp.Exchange{Engine: e.app.Policy().Engine(), Agent: "tester", Server: server, Door: "gateway", Client: "test"},
		proc, func(b []byte) error { c.in <- append([]byte(nil), b...); return nil })
	return c
}

// call sends a request and waits for its answer.
func (c *stdioClient) call(method string, params any) map[string]any {
	c.t.Helper()
	id := c.next.Add(1)
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	c.sess.FromClient(b)
	return c.await(id)
}

func (c *stdioClient) await(id int64) map[string]any {
	c.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case b := <-c.in:
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				c.t.Fatalf("the session answered %q: %v", b, err)
			}
			if got, ok := m["id"].(float64); ok && int64(got) == id {
				return m
			}
		case <-timeout:
			c.t.Fatalf("no answer to request %d", id)
		}
	}
}

func (c *stdioClient) notify(method string) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method})
	c.sess.FromClient(b)
}

func (c *stdioClient) initialize() {
	c.t.Helper()
	r := c.call("initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "t", "version": "1"}})
	if r["result"] == nil {
		c.t.Fatalf("initialize: %v", r)
	}
	c.notify("notifications/initialized")
}

func toolText(t *testing.T, r map[string]any) string {
	t.Helper()
	res, _ := r["result"].(map[string]any)
	if res == nil {
		t.Fatalf("no result: %v", r)
	}
	var b strings.Builder
	items, _ := res["content"].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			s, _ := m["text"].(string)
			b.WriteString(s)
		}
	}
	return b.String()
}

const childSecret = "tok-51c0ffee-CHILD-ENV"

func TestStdioChildEgress(t *testing.T) {
	bin, err := testenv.StdioServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "reached %s%s", r.Host, r.URL.Path)
	})})
	defer up.Close()
	const env = "AGENTG_TEST_CHILD_TOKEN"
	t.Setenv(env, childSecret)
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	e := startInProcess(t, childPolicy(bin, marks, env))
	ch, ok := e.app.Stdio().Child("files")
	if !ok {
		t.Fatal("no child for the command server files")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := ch.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.waitEvent(map[string]any{"action": "server-start", "server": "files", "decision": "allow"})
	c := newStdioClient(t, e, proc)
	c.initialize()

	// Egress to a host on its list: allowed, under its own name, caused
	// by the call in flight.
	r := c.call("tools/call", map[string]any{"name": "fetch", "arguments": map[string]any{"url": "http://api.egress.test:" + up.Port + "/ok"}})
	if txt := toolText(t, r); !strings.HasPrefix(txt, "200 reached api.egress.test") {
		t.Fatalf("fetch of a listed host: %q", txt)
	}
	call := e.waitEvent(map[string]any{"kind": "mcp", "tool": "fetch", "door": "gateway", "decision": "allow"})
	e.waitEvent(map[string]any{"kind": "http", "agent": "server:files", "server": "files", "host": "api.egress.test",
		"decision": "allow", "caused_by": call.str("id")})
	e.waitEvent(map[string]any{"action": "egress-new", "server": "files", "tool": "fetch", "host": "api.egress.test"})

	// Egress to a host the floor allows but its list does not name:
	// denied, naming the server; the upstream never sees it.
	before := hits.Load()
	r = c.call("tools/call", map[string]any{"name": "fetch", "arguments": map[string]any{"url": "http://other.egress.test:" + up.Port + "/no"}})
	if txt := toolText(t, r); !strings.HasPrefix(txt, "403") {
		t.Fatalf("fetch of an unlisted host: %q", txt)
	}
	e.waitEvent(map[string]any{"agent": "server:files", "server": "files", "host": "other.egress.test",
		"decision": "deny", "rule": "mcp:egress files"})
	// Positive evidence that nothing reached the upstream: a later
	// listed request is the next it sees.
	r = c.call("tools/call", map[string]any{"name": "fetch", "arguments": map[string]any{"url": "http://api.egress.test:" + up.Port + "/after"}})
	if txt := toolText(t, r); txt != "200 reached api.egress.test:"+up.Port+"/after" {
		t.Fatalf("fetch after the denied one: %q", txt)
	}
	after := e.waitEvent(map[string]any{"kind": "mcp", "tool": "fetch", "args": `{"url":"http://api.egress.test:` + up.Port + `/after"}`})
	e.waitEvent(map[string]any{"kind": "http", "path": "/after", "server": "files", "caused_by": after.str("id")})
	if got := hits.Load(); got != before+1 {
		t.Fatalf("the upstream saw %d requests since the denied one, want 1 (the marker)", got-before)
	}

	// HTTPS: a CONNECT tunnel of the server's, with the same fields
	// (the server does not trust the test upstream's certificate: the
	// tunnel is what is checked here, not the fetch).
	tlsUp := testenv.StartUpstream(testenv.UpstreamOptions{TLS: true})
	defer tlsUp.Close()
	c.call("tools/call", map[string]any{"name": "fetch", "arguments": map[string]any{"url": "https://api.egress.test:" + tlsUp.Port + "/tls"}})
	tlsCall := e.waitEvent(map[string]any{"kind": "mcp", "tool": "fetch", "args": `{"url":"https://api.egress.test:` + tlsUp.Port + `/tls"}`})
	e.waitEvent(map[string]any{"kind": "connect", "agent": "server:files", "server": "files", "host": "api.egress.test",
		"caused_by": tlsCall.str("id")})

	// A client that claims the server's identity without its password
	// is refused.
	cl := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(e.proxyURL("server.files", "guess"))}}
	resp, err := cl.Get("http://api.egress.test:" + up.Port + "/claim")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("a guessed server password got %d, want 407", resp.StatusCode)
	}

	// The child got its secret by name (it holds FILES_TOKEN: the echo
	// of its env is not a tool, so ask the process itself).
	env2, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", proc.PID))
	if err == nil && !strings.Contains(string(env2), "FILES_TOKEN="+childSecret) {
		t.Errorf("the child's environment lacks its secret: %q", strings.ReplaceAll(string(env2), childSecret, "<secret>"))
	}
	if err == nil && (strings.Contains(string(env2), "PATH=") || !strings.Contains(string(env2), "HTTPS_PROXY=http://server.files:")) {
		t.Errorf("the child's environment is not only its entry and the proxy: %q", strings.ReplaceAll(string(env2), childSecret, "<secret>"))
	}

	// Killed mid-call: the caller gets an error, the supervisor says so
	// and starts it again.
	id := c.next.Add(1)
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{"name": "hang", "arguments": map[string]any{}}})
	c.sess.FromClient(b)
	waitMark(t, marks, "hang")
	if err := syscall.Kill(proc.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ans := c.await(id)
	if ans["error"] == nil {
		t.Fatalf("the call in flight when the server died got %v, want an error", ans)
	}
	e.waitEvent(map[string]any{"action": "server-exit", "server": "files"})
	e.waitEvent(map[string]any{"kind": "mcp", "tool": "hang", "error_code": -32603, "error": "mcp server files: killed by signal killed"})
	proc2, err := ch.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if proc2.PID == proc.PID {
		t.Fatal("no new process after the kill")
	}
	c2 := newStdioClient(t, e, proc2)
	c2.initialize()
	r = c2.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "again"}})
	if txt := toolText(t, r); txt != "echo: again" {
		t.Fatalf("the restarted server answered %q", txt)
	}
	if n := len(e.eventsWhere(map[string]any{"action": "server-start", "server": "files", "decision": "allow"})); n < 2 {
		t.Fatalf("%d start events, want 2", n)
	}
	if strings.Contains(e.log.String(), childSecret) {
		t.Error("agentg's log holds the child's secret")
	}
	if !strings.Contains(e.log.String(), "FILES_TOKEN=[secret tok]") {
		t.Error("the child's stderr line printing its secret is not in agentg's log, masked")
	}

	// agentg mcp egress learn proposes the list from what it reached.
	logFile := filepath.Join(dir, "events.log")
	if err := os.WriteFile(logFile, []byte(e.log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runAgentg(t, "mcp", "egress", "learn", "--server", "files", "--log-file", logFile)
	if code != 0 || !strings.Contains(out, "- name: files\n    egress: [api.egress.test]") || !strings.Contains(out, "denied when tried (add only what it needs): other.egress.test") {
		t.Fatalf("egress learn exited %d:\n%s", code, out)
	}
}

func (e *env) eventsWhere(want map[string]any) []event {
	var out []event
	for _, ev := range e.events() {
		if matches(ev, want) {
			out = append(out, ev)
		}
	}
	return out
}

// waitMark waits until the stdio server recorded a call of tool.
func waitMark(t *testing.T, path, tool string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got, _ := testenv.StdioMarks(path)
		for _, l := range got {
			if strings.HasPrefix(l, tool+" ") {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the server never ran %s", tool)
}

// The TypeScript everything server as a command server: a denied call
// never runs (its stateful toggle's next answer starts, not stops), and
// arguments are redacted before they reach it.
func TestStdioChildEverything(t *testing.T) {
	node, dir, err := testenv.Node()
	if err != nil {
		t.Skip(err)
	}
	script := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if _, err := os.Stat(script); err != nil {
		t.Skipf("the everything server is not installed (%v): scripts/test.sh installs it with npm ci --prefix test/conformance", err)
	}
	e := startInProcess(t, fmt.Sprintf(`
default: deny
mcp:
  servers:
    - name: everything
      command: [%q, %q, stdio]
      egress: []
  tools:
    - deny: "everything.toggle-simulated-logging"
      id: no-toggle
      when:
        - arg: /really
          exists: true
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [arguments, results]
      id: aws
`, node, script))
	ch, ok := e.app.Stdio().Child("everything")
	if !ok {
		t.Fatal("no child for the everything server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := ch.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := newStdioClientOf(t, e, proc, "everything")
	c.initialize()
	r := c.call("tools/call", map[string]any{"name": "toggle-simulated-logging", "arguments": map[string]any{"really": true}})
	if errObj, _ := r["error"].(map[string]any); errObj == nil || !strings.Contains(fmt.Sprint(errObj["message"]), "no-toggle") {
		t.Fatalf("the denied toggle: %v", r)
	}
	r = c.call("tools/call", map[string]any{"name": "toggle-simulated-logging", "arguments": map[string]any{}})
	if txt := toolText(t, r); !strings.HasPrefix(txt, "Started simulated") {
		t.Fatalf("the toggle after the denied one: %q: the denied call ran", txt)
	}
	r = c.call("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"message": "m " + argSecret}})
	if txt := toolText(t, r); strings.Contains(txt, argSecret) || !strings.Contains(txt, "m ") {
		t.Fatalf("echo: %q", txt)
	}
	e.waitEvent(map[string]any{"kind": "mcp", "door": "gateway", "server": "everything", "tool": "toggle-simulated-logging", "decision": "deny", "rule": "no-toggle"})
	if strings.Contains(e.log.String(), argSecret) {
		t.Error("agentg's log holds the redacted key")
	}
}
