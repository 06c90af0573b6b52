package test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14 item 7: redaction covers every string and member name of
// every message, in its direction, not a list of fields. A deliberately
// hostile server (a real listener, speaking raw JSON-RPC) puts its secret
// everywhere a message has room for one; a raw client puts its own where
// a client can. Neither secret may cross agentg.

// hostileMCP is a Streamable HTTP server on loopback that answers each
// request with the messages a test scripted (as SSE events, or a JSON
// body when it is one message), and records every POST it gets.
type hostileMCP struct {
	URL    string
	up     *testenv.Upstream
	json   bool
	script func(method string, id json.RawMessage) []string
	stream []string // what a GET's stream carries; nil: GET is refused (under mu)

	mu   sync.Mutex
	seen []hostileReq
}

type hostileReq struct {
	Path   string // path and query
	Header http.Header
	Body   string
}

func startHostileMCP(t *testing.T, ca *testenv.CA, jsonBodies bool, script func(method string, id json.RawMessage) []string) *hostileMCP {
	t.Helper()
	s := &hostileMCP{json: jsonBodies, script: script}
	cert, err := ca.Leaf([]string{"mcp.test"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s.up = testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(s.serve), Cert: &cert, Quiet: true})
	t.Cleanup(s.up.Close)
	_, port, _ := net.SplitHostPort(s.up.Listener.Addr().String())
	s.URL = "https://mcp.test:" + port + "/mcp"
	return s
}

func (s *hostileMCP) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stream := s.stream
	s.mu.Unlock()
	if r.Method == http.MethodGet && stream != nil {
		// The standalone stream: the server's own messages, then the end.
		w.Header().Set("Content-Type", "text/event-stream")
		for _, msg := range stream {
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", msg)
		}
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.seen = append(s.seen, hostileReq{Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(body)})
	s.mu.Unlock()
	if trimmed := strings.TrimSpace(string(body)); strings.HasPrefix(trimmed, "[") {
		s.batch(w, []byte(trimmed))
		return
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil || m.Method == "" || m.ID == nil {
		w.WriteHeader(http.StatusAccepted) // notifications and answers
		return
	}
	var msgs []string
	switch m.Method {
	case "initialize":
		msgs = []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":%q,"capabilities":{"tools":{},"prompts":{},"resources":{},"logging":{}},"serverInfo":{"name":"hostile","version":"1.0.0"}}}`, m.ID, m.Params.ProtocolVersion)}
	case "ping":
		msgs = []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{}}`, m.ID)}
	default:
		msgs = s.script(m.Method, m.ID)
	}
	if s.json && len(msgs) == 1 {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, msgs[0])
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, msg := range msgs {
		// A message written over lines is one data field per line.
		fmt.Fprintf(w, "event: message\ndata: %s\n\n", strings.ReplaceAll(msg, "\n", "\ndata: "))
	}
}

// batch answers a JSON-RPC batch (2025-03-26) with a batch: the last
// message the script gives for each request in it.
func (s *hostileMCP) batch(w http.ResponseWriter, body []byte) {
	var msgs []struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(body, &msgs) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var out []string
	for _, m := range msgs {
		if m.Method != "" && m.ID != nil {
			answer := s.script(m.Method, m.ID)
			out = append(out, answer[len(answer)-1])
		}
	}
	if len(out) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "["+strings.Join(out, ",")+"]")
}

// count is how many POSTs the server has got.
func (s *hostileMCP) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// received is every body and request line the server got, from the
// from-th POST on.
func (s *hostileMCP) received(from int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, r := range s.seen[from:] {
		b.WriteString(r.Path + " " + r.Body + "\n")
		for k, vs := range r.Header {
			b.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
		}
	}
	return b.String()
}

// hostileEnv is agentg under the redaction policy of TestMCPRedaction
// (aws-args: AWS keys in what the client sends; gh-results: GitHub tokens
// in what the server sends) in front of a hostile server.
func hostileEnv(t *testing.T, jsonBodies bool, script func(method string, id json.RawMessage) []string) (*mcpEnv, *hostileMCP) {
	t.Helper()
	e := newMCPEnv(t, mcpPolicy(mcpRedact), testenv.MCPServerConfig{}, testenv.MCPStateless)
	return e, startHostileMCP(t, e.upCA, jsonBodies, script)
}

func hostileRaw(t *testing.T, e *mcpEnv, s *hostileMCP) *testenv.MCPRaw {
	t.Helper()
	return e.rawAt(t, mcpCase{testenv.MCPStateless, "2025-06-18"}, s.URL)
}

// Server to client: every place a server's message has for a string.
func TestMCPRedactionEveryServerMessage(t *testing.T) {
	const tok, mark = ghToken, "[REDACTED:gh-results]"
	res := func(id json.RawMessage, result string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, id, result)
	}
	type leak struct {
		name   string
		method string
		params map[string]any
		answer func(id json.RawMessage) []string
	}
	call := map[string]any{"name": "t", "arguments": map[string]any{}}
	leaks := []leak{
		{"error message and data", "tools/call", call, func(id json.RawMessage) []string {
			return []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32000,"message":"failed with %s","data":{"token":%q}}}`, id, tok, tok)}
		}},
		{"resource_link uri and description", "tools/call", call, func(id json.RawMessage) []string {
			return []string{res(id, `{"content":[{"type":"resource_link","uri":"https://x.test/`+tok+`","name":"n","description":"see `+tok+`"}]}`)}
		}},
		{"embedded resource uri", "tools/call", call, func(id json.RawMessage) []string {
			return []string{res(id, `{"content":[{"type":"resource","resource":{"uri":"file:///`+tok+`","text":"ok"}}]}`)}
		}},
		{"result _meta", "tools/call", call, func(id json.RawMessage) []string {
			return []string{res(id, `{"content":[{"type":"text","text":"ok"}],"_meta":{"ui":"`+tok+`"}}`)}
		}},
		{"a member name of structuredContent", "tools/call", call, func(id json.RawMessage) []string {
			return []string{res(id, `{"content":[],"structuredContent":{"`+tok+`":1}}`)}
		}},
		{"progress notification", "tools/call", call, func(id json.RawMessage) []string {
			return []string{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1,"message":"` + tok + `"}}`,
				res(id, `{"content":[{"type":"text","text":"ok"}]}`)}
		}},
		{"log notification", "tools/call", call, func(id json.RawMessage) []string {
			return []string{`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":{"k":"` + tok + `"}}}`,
				res(id, `{"content":[{"type":"text","text":"ok"}]}`)}
		}},
		{"sampling/createMessage", "tools/call", call, func(id json.RawMessage) []string {
			return []string{`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"` + tok + `"}}],"maxTokens":5}}`,
				res(id, `{"content":[{"type":"text","text":"ok"}]}`)}
		}},
		{"resources/read answer", "resources/read", map[string]any{"uri": "file:///a"}, func(id json.RawMessage) []string {
			return []string{res(id, `{"contents":[{"uri":"file:///a","mimeType":"text/plain","text":"`+tok+`","_meta":{"k":"`+tok+`"}}]}`)}
		}},
		{"prompts/get answer", "prompts/get", map[string]any{"name": "p"}, func(id json.RawMessage) []string {
			return []string{res(id, `{"description":"`+tok+`","messages":[{"role":"user","content":{"type":"text","text":"`+tok+`"}}]}`)}
		}},
		{"tool description", "tools/list", nil, func(id json.RawMessage) []string {
			return []string{res(id, `{"tools":[{"name":"t","description":"uses `+tok+`","inputSchema":{"type":"object","properties":{"`+tok+`":{"type":"string"}}}}]}`)}
		}},
	}
	for _, jsonBodies := range []bool{false, true} {
		for _, l := range leaks {
			name := l.name + "/sse"
			if jsonBodies {
				if len(l.answer(json.RawMessage(`1`))) > 1 {
					continue // more than one message needs a stream
				}
				name = l.name + "/json"
			}
			t.Run(name, func(t *testing.T) {
				e, s := hostileEnv(t, jsonBodies, func(method string, id json.RawMessage) []string {
					if method != l.method {
						return []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}`, id)}
					}
					return l.answer(id)
				})
				r := hostileRaw(t, e, s)
				reply, err := r.Call(mcpCtx(t), `7`, l.method, l.params)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(reply.Body), tok) {
					t.Fatalf("the server's secret reached the client: %s", reply.Body)
				}
				// Positive evidence: what the server sent arrived, redacted,
				// and the answer to the call with it.
				if !strings.Contains(string(reply.Body), mark) {
					t.Fatalf("no %s in the answer (was it dropped?): %s", mark, reply.Body)
				}
				if reply.ByID(`7`) == nil {
					t.Fatalf("no answer to the call: %s", reply.Body)
				}
				if n := len(l.answer(json.RawMessage(`7`))); len(reply.Messages) != n {
					t.Errorf("%d messages reached the client, the server sent %d: %s", len(reply.Messages), n, reply.Body)
				}
				if strings.Contains(e.log.String(), tok) {
					t.Error("agentg's log holds the server's secret")
				}
			})
		}
	}
}

// Client to server: every place a client's message has for a string. A
// secret agentg can rewrite reaches the server as the marker; one it
// cannot (the request id, the URL) stops the message, and a later
// request shows the server got nothing else.
func TestMCPRedactionEveryClientMessage(t *testing.T) {
	const key, mark = testenv.MCPSecret, "[REDACTED:aws-args]"
	e, s := hostileEnv(t, false, func(method string, id json.RawMessage) []string {
		return []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"ok"}],"messages":[]}}`, id)}
	})
	r := hostileRaw(t, e, s)
	for i, tc := range []struct {
		name    string
		body    string
		path    string // "" : the endpoint
		header  string // an Mcp-Param header's value, if any
		refused bool   // the message must not reach the server at all
	}{
		{"an argument's member name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"` + key + `":"v"}}}`, "", "", false},
		{"params._meta", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","arguments":{},"_meta":{"k":"` + key + `"}}}`, "", "", false},
		{"prompts/get arguments", `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p","arguments":{"a":"` + key + `"}}}`, "", "", false},
		{"a notification", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99,"reason":"` + key + `"}}`, "", "", false},
		{"an unsolicited client response", `{"jsonrpc":"2.0","id":"s9","result":{"model":"m","role":"assistant","content":{"type":"text","text":"` + key + `"}}}`, "", "", false},
		{"an elicitation answer's content", `{"jsonrpc":"2.0","id":"s10","result":{"action":"accept","content":{"` + key + `":"` + key + `"}}}`, "", "", false},
		{"an Mcp-Param header mirroring an argument", `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"t","arguments":{"region":"` + key + `"}}}`, "", key, true},
		{"an Mcp-Param header, base64", `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"t","arguments":{"region":"` + key + `"}}}`, "", "=?base64?" + base64.StdEncoding.EncodeToString([]byte(key)) + "?=", true},
		{"the tool name", `{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"` + key + `","arguments":{}}}`, "", "", true},
		{"a denied call's arguments (agentg's own log)", `{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"delete_all","arguments":{"k":"` + key + `"}}}`, "", "", true},
		{"the request id", `{"jsonrpc":"2.0","id":"` + key + `","method":"tools/call","params":{"name":"t","arguments":{}}}`, "", "", true},
		{"the URL query", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t","arguments":{}}}`, "/mcp?key=" + key, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := s.count()
			p := testenv.MCPPost{Body: []byte(tc.body)}
			if tc.header != "" {
				p.Header = http.Header{"Mcp-Param-Region": {tc.header}}
			}
			if tc.path != "" {
				r.Endpoint = s.URL[:len(s.URL)-len("/mcp")] + tc.path
			}
			reply, err := r.Post(mcpCtx(t), p)
			r.Endpoint = s.URL
			if err != nil {
				t.Fatal(err)
			}
			// The marker: a ping the server must see after the message.
			after := fmt.Sprintf(`"after-%d"`, i)
			if _, err := r.Post(mcpCtx(t), testenv.MCPPost{Body: []byte(`{"jsonrpc":"2.0","id":` + after + `,"method":"ping"}`)}); err != nil {
				t.Fatal(err)
			}
			got := s.received(from)
			if !strings.Contains(got, after) {
				t.Fatalf("the server never saw the marker request %s", after)
			}
			if strings.Contains(got, key) {
				t.Fatalf("the client's secret reached the server:\n%s", got)
			}
			if tc.refused {
				if reply.Status == http.StatusAccepted || len(reply.Messages) == 0 || !strings.Contains(string(reply.Messages[0]), `"error"`) {
					t.Errorf("a message agentg cannot redact was not refused: %d %s", reply.Status, reply.Body)
				}
				rule := "builtin:mcp-redact"
				if strings.Contains(tc.body, "delete_all") {
					rule = "no-delete"
				}
				waitEventWhere(t, e.env, "a "+rule+" refusal", func(ev event) bool {
					return ev.str("rule") == rule && ev.str("decision") == "deny"
				})
				if strings.Contains(e.log.String(), key) {
					t.Fatal("agentg's log holds the client's secret")
				}
				return
			}
			if !strings.Contains(got, mark) {
				t.Fatalf("the server did not get the message redacted (%s):\n%s", mark, got)
			}
		})
	}
	if strings.Contains(e.log.String(), key) {
		t.Error("agentg's log holds the client's secret")
	}
}

// The server's messages on its standalone GET stream (no request of the
// client's to answer) are redacted like any other.
func TestMCPRedactionServerStream(t *testing.T) {
	const tok, mark = ghToken, "[REDACTED:gh-results]"
	e, s := hostileEnv(t, false, func(string, json.RawMessage) []string { return nil })
	stream := []string{
		`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"` + tok + `","data":"` + tok + `"}}`,
		`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"` + tok + `"}}],"maxTokens":5,"_meta":{"` + tok + `":1}}}`,
		`{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///` + tok + `"}}`,
	}
	s.mu.Lock()
	s.stream = stream
	s.mu.Unlock()
	r := hostileRaw(t, e, s)
	req, err := http.NewRequestWithContext(mcpCtx(t), http.MethodGet, s.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	resp, err := r.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), tok) {
		t.Fatalf("the server's secret reached the client on its GET stream: %s", body)
	}
	if msgs := testenv.MCPMessages(resp.Header.Get("Content-Type"), body); len(msgs) != len(stream) || strings.Count(string(body), mark) != 5 {
		t.Fatalf("want the %d messages, each redacted (5 markers): %d %s", len(stream), resp.StatusCode, body)
	}
}

// A 2025-03-26 batch is redacted message by message, both ways.
func TestMCPRedactionBatch(t *testing.T) {
	const key, tok = testenv.MCPSecret, ghToken
	e, s := hostileEnv(t, false, func(method string, id json.RawMessage) []string {
		return []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"for %s: %s"}]}}`, id, method, tok)}
	})
	r := e.rawAt(t, mcpCase{testenv.MCPStateless, "2025-03-26"}, s.URL)
	from := s.count()
	batch := `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"k":"` + key + `"}}},` +
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":0,"reason":"` + key + `"}},` +
		`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a","_meta":{"k":"` + key + `"}}}]`
	reply, err := r.Post(mcpCtx(t), testenv.MCPPost{Body: []byte(batch)})
	if err != nil {
		t.Fatal(err)
	}
	got := s.received(from)
	if strings.Contains(got, key) || strings.Count(got, "[REDACTED:aws-args]") != 3 {
		t.Fatalf("the server got %s, want the key replaced three times", got)
	}
	if strings.Contains(string(reply.Body), tok) || strings.Count(string(reply.Body), "[REDACTED:gh-results]") != 2 || reply.ByID(`1`) == nil || reply.ByID(`2`) == nil {
		t.Fatalf("the client got %d %s, want both answers with the token redacted", reply.Status, reply.Body)
	}
}
