package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// exchangeEndPolicy governs an MCP server on mcp.test (intercepted), and
// denies denied.test; every other loopback destination is open.
const exchangeEndPolicy = `
default: allow
ips:
  - allow: 127.0.0.1/32
hosts:
  - deny: [denied.test]
    id: no-denied
resolve:
  mcp.test: [127.0.0.1]
  denied.test: [127.0.0.1]
intercept: [mcp.test]
mcp:
  default: allow
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
`

// startRobustAgentg runs agentg as its own process with its stderr kept.
func startRobustAgentg(t *testing.T, policy string, args ...string) (*testenv.Agentg, *syncBuffer) {
	t.Helper()
	stderr := &syncBuffer{}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: t.TempDir(), Policy: policy, Stderr: stderr,
		Args: append([]string{"--reload-interval", "0", "--shutdown-timeout", "2s"}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	return a, stderr
}

// noPanics fails the test when agentg's stderr or its log holds a panic
// net/http recovered.
func noPanics(t *testing.T, a *testenv.Agentg, stderr *syncBuffer) {
	t.Helper()
	if s := stderr.String(); strings.Contains(s, "panic") {
		t.Errorf("agentg's stderr has a panic:\n%s", s)
	}
	lines, err := testenv.ReadLog(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if m, _ := l["message"].(string); strings.Contains(m, "panic") {
			t.Errorf("agentg logged a panic: %v", l)
		}
	}
}

// keptAliveExchange writes raw on the connection and reads one response whole.
func keptAliveExchange(t *testing.T, a *testenv.Agentg, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write %q: %v", raw, err)
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		lines, _ := testenv.ReadLog(a.LogFile)
		var ops []string
		for _, l := range lines {
			if m, _ := l["message"].(string); m != "" {
				ops = append(ops, m)
			}
		}
		t.Fatalf("response to %q: %v\nagentg said: %s\n%s", raw, err, strings.Join(ops, "\n"), a.Stderr())
	}
	if method == http.MethodConnect && resp.StatusCode == 200 {
		return resp, "" // the tunnel: no body, the bytes that follow are the tunnel's
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// A request agentg answers itself without reading its small body, on a
// kept-alive connection (absolute-form, and inside an intercepted
// tunnel), leaves the connection in step: the next request on it is
// served, and net/http recovers no panic ("invalid concurrent Body.Read
// call", which full duplex tripped when the handler returned with the
// body unread).
func TestRefusalWithBodyKeepsConnection(t *testing.T) {
	var mu sync.Mutex
	var seen []string // what the upstream served, in order
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "marker "+r.URL.Path)
	})})
	defer up.Close()
	a, stderr := startRobustAgentg(t, exchangeEndPolicy)
	host := "mcp.test:" + up.Port

	// Inside an intercepted tunnel (plaintext HTTP/1, the same inner
	// server as TLS): a PUT with a body on the governed server is refused
	// by the MCP guard, 405, unread.
	c, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	resp, body := keptAliveExchange(t, a, c, br, "CONNECT "+host+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d %q", resp.StatusCode, body)
	}
	for i := range 3 {
		resp, body = keptAliveExchange(t, a, c, br, "PUT /mcp/x HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("PUT %d in the tunnel: %d %q, want 405", i, resp.StatusCode, body)
		}
		resp, body = keptAliveExchange(t, a, c, br, "GET /after-"+itoa(i)+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if resp.StatusCode != 200 || body != "marker /after-"+itoa(i) {
			t.Fatalf("the request after refusal %d in the tunnel: %d %q", i, resp.StatusCode, body)
		}
	}

	// Absolute-form on the explicit listener: a PUT with a body to the
	// governed server, refused unread, then the next request.
	c2, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	br2 := bufio.NewReader(c2)
	plain := "127.0.0.1:" + up.Port
	for i := range 3 {
		resp, body = keptAliveExchange(t, a, c2, br2, "POST http://denied.test:"+up.Port+"/x HTTP/1.1\r\nHost: denied.test:"+up.Port+"\r\nContent-Length: 5\r\n\r\nhello")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("POST to denied.test: %d %q, want 403", resp.StatusCode, body)
		}
		resp, body = keptAliveExchange(t, a, c2, br2, "GET http://"+plain+"/plain-"+itoa(i)+" HTTP/1.1\r\nHost: "+plain+"\r\n\r\n")
		if resp.StatusCode != 200 || body != "marker /plain-"+itoa(i) {
			t.Fatalf("the request after refusal %d on the proxy connection: %d %q", i, resp.StatusCode, body)
		}
	}
	mu.Lock()
	got := strings.Join(seen, ",")
	mu.Unlock()
	if want := "GET /after-0,GET /after-1,GET /after-2,GET /plain-0,GET /plain-1,GET /plain-2"; got != want {
		t.Errorf("the upstream served %s, want %s (nothing refused)", got, want)
	}
	noPanics(t, a, stderr)
}
