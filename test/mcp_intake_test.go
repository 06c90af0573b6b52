package test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, items 1 and 4: agentg reads a body as the server it protects
// does, or refuses it. The server is the TypeScript SDK's (intake.mjs):
// express.json() decodes a body by its charset before the SDK reads it,
// so a UTF-7 "tools+AC8-call" is a tools/call to it; and JSON.parse reads
// "jsonrp\u0063" as "jsonrpc", the last duplicate winning. Each case runs
// directly first (the peer runs the denied tool: the case is real), then
// through agentg, where the tool must not run; an allowed call through
// agentg afterwards, which the same peer counts, shows it was reached.

const intakePolicy = `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [mcp.test, other.test]
resolve:
  mcp.test: [127.0.0.1]
  other.test: [127.0.0.1]
mcp:
  default: allow
  unknown_servers: deny
  servers:
    - name: srv
      url: "mcp.test/**"
  tools:
    - deny: "srv.delete"
      id: no-delete
`

// intakePeer is intake.mjs, started for one test.
type intakePeer struct {
	*testenv.NodePeer
	port string
}

func startIntakePeer(t *testing.T) *intakePeer {
	t.Helper()
	p, err := testenv.StartNodePeer("intake.mjs", nil)
	if err != nil {
		t.Skipf("Node peer: %v", err)
	}
	t.Cleanup(p.Close)
	_, port, _ := strings.Cut(p.Addr, ":")
	return &intakePeer{NodePeer: p, port: port}
}

type intakeCount struct {
	Delete int     `json:"delete"`
	Echo   int     `json:"echo"`
	Type   *string `json:"type"`
}

func (p *intakePeer) count(t *testing.T) intakeCount {
	t.Helper()
	resp, err := http.Get("http://" + p.Addr + "/count")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c intakeCount
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// post sends body with Content-Type ct to url, through hc.
func intakePost(t *testing.T, hc *http.Client, url string, ct []string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	for _, v := range ct {
		req.Header.Add("Content-Type", v)
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func utf16LE(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = binary.LittleEndian.AppendUint16(b, 0xfeff)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

// callBody is a tools/call of tool, with method spelled as given.
func callBody(method, tool string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"` + method + `","params":{"name":"` + tool + `","arguments":{}}}`
}

// intakeCase is a POST a peer reads as a call of the denied tool.
type intakeCase struct {
	name string
	ct   []string
	body []byte
}

func intakeCases() []intakeCase {
	return []intakeCase{
		{"utf-7 method", []string{"application/json; charset=utf-7"}, []byte(callBody("tools+AC8-call", "delete"))},
		{"utf-7 tool name", []string{"application/json; charset=utf-7"}, []byte(callBody("tools/call", "del+AGU-te"))},
		{"UTF-7 quoted", []string{`application/json; charset="UTF-7"`}, []byte(callBody("tools+AC8-call", "delete"))},
		{"duplicate charset", []string{"application/json; charset=utf-7; charset=utf-8"}, []byte(callBody("tools+AC8-call", "delete"))},
		{"utf-16le", []string{"application/json; charset=utf-16le"}, utf16LE(callBody("tools/call", "delete"), false)},
		{"utf-16 bom", []string{"application/json; charset=utf-16"}, utf16LE(callBody("tools/call", "delete"), true)},
		// Item 4: hidden from a substring test, and no strict parse.
		{"escaped jsonrpc, duplicate id", []string{"application/json"},
			[]byte(`{"jsonrp\u0063":"2.0","id":1,"method":"tools/call","params":{"name":"delete","arguments":{}},"id":2}`)},
		{"escaped jsonrpc, duplicate name", []string{"application/json"},
			[]byte(`{"\u006asonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete","arguments":{}}}`)},
	}
}

func TestMCPIntakeReadsAsThePeer(t *testing.T) {
	p := startIntakePeer(t)
	e := startProxy(t, intakePolicy, nil)
	hc := e.client("", "", nil)
	direct := &http.Client{}
	echo := callBody("tools/call", "echo")
	for _, tc := range intakeCases() {
		t.Run(tc.name, func(t *testing.T) {
			// Directly, the peer runs the denied tool.
			before := p.count(t)
			if st, body := intakePost(t, direct, "http://"+p.Addr+"/mcp", tc.ct, tc.body); st != 200 || p.count(t).Delete != before.Delete+1 {
				t.Fatalf("directly the peer did not run delete (%d %s): the case tests nothing", st, body)
			}
			for _, host := range []string{"mcp.test", "other.test"} {
				before := p.count(t)
				st, body := intakePost(t, hc, "http://"+host+":"+p.port+"/mcp", tc.ct, tc.body)
				// A later allowed call, through agentg to the same peer.
				if st, b := intakePost(t, hc, "http://mcp.test:"+p.port+"/mcp", []string{"application/json"}, []byte(echo)); st != 200 || !strings.Contains(b, "echo ran") {
					t.Fatalf("the allowed marker call: %d %s", st, b)
				}
				after := p.count(t)
				if after.Echo != before.Echo+1 {
					t.Fatalf("the marker call did not reach the peer: %+v then %+v", before, after)
				}
				if after.Delete != before.Delete {
					t.Fatalf("through agentg to %s the denied tool ran (%d %s)", host, st, body)
				}
				if st < 400 || !strings.Contains(body, "rule") {
					t.Errorf("through agentg to %s: %d %s, want a JSON-RPC refusal", host, st, body)
				}
			}
		})
	}
	// What agentg forwards says what it read: application/json, not the
	// charset or +json type the client sent.
	for _, ct := range []string{"application/json; charset=UTF-8", `application/vnd.api+json; charset="utf-8"`, "application/json;charset=utf8"} {
		if st, b := intakePost(t, hc, "http://mcp.test:"+p.port+"/mcp", []string{ct}, []byte(echo)); st != 200 || !strings.Contains(b, "echo ran") {
			t.Fatalf("%s: %d %s", ct, st, b)
		}
		if got := p.count(t).Type; got == nil || *got != "application/json" {
			t.Errorf("sent as %q, the peer got Content-Type %v, want application/json", ct, deref(got))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

// Item 1, the other direction: a client that honours a charset (Python's
// httpx reads an answer's text by it) would read other messages from a
// server's answer than agentg did. An MCP answer in another charset than
// UTF-8 is withheld; one agentg read goes on under the canonical type.
func TestMCPIntakeAnswerCharset(t *testing.T) {
	// The secret would reach the client unredacted, spelled in UTF-7.
	const secret7 = `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"AKIA+AEE-AAAAAAAAAAAAAAA"}]}}`
	const plain = `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"fine"}]}}`
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/mcp/json7":
			w.Header().Set("Content-Type", "application/json; charset=utf-7")
			io.WriteString(w, secret7)
		case "/mcp/sse16":
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-16")
			io.WriteString(w, "data: "+plain+"\n\n")
		case "/mcp/two":
			w.Header().Add("Content-Type", "application/json")
			w.Header().Add("Content-Type", "application/json; charset=utf-7")
			io.WriteString(w, plain)
		default:
			w.Header().Set("Content-Type", `application/json; charset="UTF-8"`)
			io.WriteString(w, plain)
		}
	})})
	t.Cleanup(up.Close)
	e := startProxy(t, intakePolicy+`
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [results]
      id: aws-keys
`, nil)
	hc := e.client("", "", nil)
	call := []byte(callBody("tools/call", "echo"))
	for _, path := range []string{"/mcp/json7", "/mcp/sse16", "/mcp/two"} {
		st, body := intakePost(t, hc, "http://mcp.test:"+up.Port+path, []string{"application/json"}, call)
		if st != http.StatusBadGateway || strings.Contains(body, "AKIA") || strings.Contains(body, "fine") || !strings.Contains(body, `"id":7`) {
			t.Errorf("%s: %d %s, want the answer withheld (502), an error for request 7 in its place", path, st, body)
		}
	}
	ev := waitMCPEvent(t, e, map[string]any{"rule": "builtin:mcp-answer-type", "decision": "deny"})
	if !strings.Contains(ev.str("reason"), "charset") {
		t.Errorf("the refusal's event %v: want the charset named", ev)
	}
	req, _ := http.NewRequest("POST", "http://mcp.test:"+up.Port+"/mcp/plain", bytes.NewReader(call))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), "fine") {
		t.Errorf("a UTF-8 answer: %d %q %s, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
}

// Item 4 against the official Go SDK, which takes "jsonrp\u0063" for
// "jsonrpc" and lets the last of duplicate names win: such a body fails
// agentg's strict parse and hid from its substring detection, so under
// unknown_servers: deny it went to an unnamed host unread, and ran.
// (Case-variant names, which encoding/json-based servers match, are
// covered by FuzzDetect: this SDK's decoder is case-sensitive.)
func TestMCPIntakeGoSDKLenient(t *testing.T) {
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	s := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStatelessJSON, CA: upCA, Hosts: []string{"other.test", "mcp.test"}})
	e := &mcpEnv{env: startProxyWith(t, mcpPolicy(`
mcp:
  default: allow
  unknown_servers: deny
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
`), nil, &tlsOpts{roots: upCA.Pool()}), upCA: upCA}
	const rev = "2025-06-18"
	client := func(cfg testenv.MCPClientConfig) *http.Client {
		hc := testenv.MCPHTTPClient(cfg)
		t.Cleanup(hc.CloseIdleConnections)
		return hc
	}
	direct := testenv.NewMCPRaw(client(testenv.MCPClientConfig{Direct: s.Addr, Roots: upCA.Pool()}), s.Mode, "https://other.test:"+s.Port+"/mcp", rev)
	via := testenv.NewMCPRaw(client(e.via("", "")), s.Mode, "https://other.test:"+s.Port+"/mcp", rev)
	marker := testenv.NewMCPRaw(client(e.via("", "")), s.Mode, "https://mcp.test:"+s.Port+"/mcp", rev)
	for _, tc := range []struct{ name, body string }{
		{"escape, duplicate name", `{"jsonrp\u0063":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}},"id":1}`},
		{"escape, duplicate argument", `{"jsonrp\u0063":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1,"x":2}}}`},
		{"escape, upper-case argument", `{"jsonrp\u0063":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1,"X":2}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Calls(testenv.MCPToolEcho)
			if rep, err := direct.Post(mcpCtx(t), testenv.MCPPost{Body: []byte(tc.body)}); err != nil || s.Calls(testenv.MCPToolEcho) != before+1 {
				t.Fatalf("directly the Go SDK did not run it (%v %d %s): the case tests nothing", err, rep.Status, rep.Body)
			}
			rep, err := via.Post(mcpCtx(t), testenv.MCPPost{Body: []byte(tc.body)})
			if err != nil {
				t.Fatal(err)
			}
			// The marker: an allowed call to the same server, by its name.
			if m, err := marker.Call(mcpCtx(t), "9", "tools/call", map[string]any{"name": testenv.MCPToolEcho, "arguments": map[string]any{}}); err != nil || m.Status != 200 {
				t.Fatalf("the marker call: %v %+v", err, m)
			}
			if n := s.Calls(testenv.MCPToolEcho); n != before+2 {
				t.Fatalf("through agentg to an unnamed host under unknown_servers: deny, the call ran (%d %s)", rep.Status, rep.Body)
			}
			if rep.Status < 400 {
				t.Errorf("through agentg: %d %s, want a refusal", rep.Status, rep.Body)
			}
		})
	}
}

// Item 1 on the TypeScript SDK's 2024-11-05 transport: SSEServerTransport
// reads a POST's body with raw-body in the body's own charset, so a UTF-7
// tools/call posted to the session's endpoint runs there. Through agentg
// it is refused, and an allowed call afterwards shows the peer reached.
func TestMCPIntakeLegacySSECharset(t *testing.T) {
	p := startIntakePeer(t)
	e := startProxy(t, intakePolicy, nil)
	open := func(hc *http.Client, base string) (endpoint string, br *bufio.Reader) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/sse", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		br = bufio.NewReader(resp.Body)
		ev, err := testenv.ReadSSE(br)
		if err != nil || ev.Name != "endpoint" {
			t.Fatalf("first event %+v %v, want endpoint", ev, err)
		}
		return base + ev.Data, br
	}
	body := []byte(callBody("tools+AC8-call", "delete"))
	ct := []string{"application/json; charset=utf-7"}

	direct := &http.Client{}
	ep, _ := open(direct, "http://"+p.Addr)
	before := p.count(t)
	if st, b := intakePost(t, direct, ep, ct, body); st != http.StatusAccepted {
		t.Fatalf("directly: %d %s", st, b)
	}
	// The SSE transport answers 202 before the tool runs: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for p.count(t).Delete != before.Delete+1 {
		if time.Now().After(deadline) {
			t.Fatal("directly the peer did not run delete: the case tests nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}

	hc := e.client("", "", nil)
	ep, _ = open(hc, "http://mcp.test:"+p.port)
	before = p.count(t)
	st, b := intakePost(t, hc, ep, ct, body)
	if st != http.StatusUnsupportedMediaType || !strings.Contains(b, "builtin:mcp-parse") {
		t.Errorf("through agentg: %d %s, want the charset refused (415)", st, b)
	}
	// The marker: an allowed call the same peer counts (on its
	// Streamable HTTP door: the SSE transport's bare 202 is item 10's).
	if st, b := intakePost(t, hc, "http://mcp.test:"+p.port+"/mcp", []string{"application/json"}, []byte(callBody("tools/call", "echo"))); st != 200 || !strings.Contains(b, "echo ran") {
		t.Fatalf("the marker call: %d %s", st, b)
	}
	after := p.count(t)
	if after.Echo != before.Echo+1 {
		t.Fatalf("the marker did not run: %+v then %+v", before, after)
	}
	if after.Delete != before.Delete {
		t.Fatalf("through agentg the SSE transport ran the UTF-7 call (%d %s)", st, b)
	}
}
