package test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7: on a host a servers entry names, agentg parses what the server
// will execute, and refuses, with a clear error and an event, whatever it
// cannot read the one way the server would: never passed unread.
// TestMCPPeersDirect shows the Go SDK running several of these (the last
// duplicate name wins, escapes are decoded, invalid UTF-8 is taken, a
// header-less call runs); the others other servers take (the TypeScript
// SDK accepts a leading BOM).

// deepArgs nests n objects.
func deepArgs(n int) string {
	return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
}

func TestMCPFailClosed(t *testing.T) {
	policy := mcpPolicy(strings.Replace(mcpBase, "deny_as: error", "deny_as: error\n  max_message: 64KiB", 1))
	e := newMCPEnv(t, policy, testenv.MCPServerConfig{}, testenv.MCPStateful, testenv.MCPStateless, testenv.MCPLegacySSE)
	type mutation struct {
		name   string
		edit   func(body string) string // of a valid tools/call of echo with arguments {"x":"y"}
		header http.Header
		raw    []byte // instead of the edited body
	}
	rep := func(old, new string) func(string) string {
		return func(b string) string {
			if !strings.Contains(b, old) {
				panic(fmt.Sprintf("body %s lacks %s", b, old))
			}
			return strings.Replace(b, old, new, 1)
		}
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	cases := []mutation{
		{name: "duplicate name", edit: rep(`"name":"echo"`, `"name":"echo","name":"delete_project"`)},
		{name: "duplicate method", edit: rep(`"method":"tools/call"`, `"method":"tools/list","method":"tools/call"`)},
		{name: "duplicate id", edit: rep(`"id":1,`, `"id":1,"id":2,`)},
		{name: "duplicate jsonrpc", edit: rep(`"jsonrpc":"2.0"`, `"jsonrpc":"2.0","jsonrpc":"1.0"`)},
		{name: "duplicate params", edit: rep(`"params":{`, `"params":{"name":"delete_project"},"params":{`)},
		{name: "duplicate arguments", edit: rep(`"arguments":{"x":"y"}`, `"arguments":{"x":"y"},"arguments":{"x":"z"}`)},
		{name: "case-variant name", edit: rep(`"name":"echo"`, `"name":"echo","Name":"delete_project"`)},
		{name: "case-variant method", edit: rep(`"method":"tools/call"`, `"Method":"tools/list","method":"tools/call"`)},
		{name: "case-variant params", edit: rep(`"params":{`, `"PARAMS":{"name":"delete_project"},"params":{`)},
		{name: "case-variant arguments", edit: rep(`"arguments":{"x":"y"}`, `"arguments":{"x":"y"},"Arguments":{"x":"z"}`)},
		{name: "case-variant id", edit: rep(`"id":1,`, `"id":1,"ID":2,`)},
		{name: "escaped allowed name", edit: rep(`"name":"echo"`, `"name":"\u0065cho"`)},
		{name: "escaped denied name", edit: rep(`"name":"echo"`, `"name":"delete\u005fproject"`)},
		{name: "escaped key", edit: rep(`"name":"echo"`, `"name":"echo","n\u0061me":"delete_project"`)},
		{name: "name changed by NFKC", edit: rep(`"name":"echo"`, `"name":"ｅcho"`)},
		{name: "invalid UTF-8 in arguments", edit: rep(`"x":"y"`, "\"x\":\"y\xff\"")},
		{name: "invalid UTF-8 in name", edit: rep(`"name":"echo"`, "\"name\":\"echo\xc3\"")},
		{name: "UTF-8 BOM", edit: func(b string) string { return "\xef\xbb\xbf" + b }},
		{name: "over max_message", edit: rep(`"x":"y"`, `"x":"`+strings.Repeat("y", 100<<10)+`"`)},
		{name: "nesting past bounds", edit: rep(`{"x":"y"}`, deepArgs(5000))},
		{name: "number past bounds", edit: rep(`"id":1,`, `"id":1`+strings.Repeat("0", 400)+`,`)},
		{name: "two messages", edit: func(b string) string { return b + " " + strings.Replace(b, "echo", "delete_project", 1) }},
		{name: "trailing garbage", edit: func(b string) string { return b + "x" }},
		{name: "not JSON", raw: []byte("hello, server")},
		{name: "JSON-RPC under text/plain", header: http.Header{"Content-Type": {"text/plain"}}},
		{name: "JSON-RPC without a content type", header: http.Header{"Content-Type": nil}},
		{name: "JSON-RPC as a form", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
		{name: "unknown content encoding", header: http.Header{"Content-Encoding": {"br"}}},
		{name: "made-up content encoding", header: http.Header{"Content-Encoding": {"x-agentg-test"}}},
		{name: "gzip that is not", header: http.Header{"Content-Encoding": {"gzip"}}},
		{name: "gzip over max_message", header: http.Header{"Content-Encoding": {"gzip"}},
			edit: rep(`"x":"y"`, `"x":"`+strings.Repeat("y", 1<<20)+`"`)},
	}
	for _, c := range []mcpCase{{testenv.MCPStateful, "2025-06-18"}, {testenv.MCPStateless, "2026-07-28"}, {testenv.MCPLegacySSE, "2024-11-05"}} {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			r := e.raw(t, c)
			valid := string(r.Request(`1`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"x": "y"}}))
			for i, m := range cases {
				t.Run(m.name, func(t *testing.T) {
					body := []byte(valid)
					if m.edit != nil {
						body = []byte(m.edit(valid))
					}
					if m.raw != nil {
						body = m.raw
					}
					if m.name == "gzip over max_message" {
						body = gz(body) // small on the wire, past the bound decoded
					}
					hdr := r.Headers("tools/call", "echo")
					for k, v := range m.header {
						hdr[k] = v
					}
					path := fmt.Sprintf("/mcp/fc-%02d", i)
					echo, del := s.Calls(testenv.MCPToolEcho), s.Calls(testenv.MCPToolDelete)
					reply, err := r.Post(mcpCtx(t), testenv.MCPPost{Path: path, Body: body, Header: hdr})
					if err != nil {
						t.Fatal(err)
					}
					if reply.Status < 400 || reply.Status > 499 || len(bytes.TrimSpace(reply.Body)) == 0 {
						t.Errorf("answered %d %q, want a 4xx refusal that says why", reply.Status, reply.Body)
					}
					mcpNoRequest(t, r, s, path)
					if s.Calls(testenv.MCPToolEcho) != echo || s.Calls(testenv.MCPToolDelete) != del {
						t.Fatal("a tool ran")
					}
					waitLineWhere(t, e.env, "refusing "+path, func(ev event) bool {
						return ev.str("path") == path && ev.str("decision") == "deny"
					})
				})
			}
		})
	}
}

// gzip and deflate request bodies are decoded and decided like any other.
// (The Go SDK server does not decode request bodies: an allowed call runs
// only if agentg forwards it decoded, so the test asks only that it went
// upstream in a form that decodes to what was sent.)
func TestMCPEncodedRequests(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, testenv.MCPStateful, testenv.MCPStateless)
	encoders := map[string]func([]byte) []byte{
		"gzip": func(b []byte) []byte {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
		"deflate": func(b []byte) []byte { // HTTP's deflate is the zlib format (RFC 9110, 8.4.1.2)
			var buf bytes.Buffer
			w := zlib.NewWriter(&buf)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
	}
	for _, c := range []mcpCase{{testenv.MCPStateful, "2025-11-25"}, {testenv.MCPStateless, "2026-07-28"}} {
		for enc, encode := range encoders {
			t.Run(c.String()+"/"+enc, func(t *testing.T) {
				s := e.peers[c.mode]
				r := e.raw(t, c)
				ctx := mcpCtx(t)
				hdr := r.Headers("tools/call", "echo")
				hdr.Set("Content-Encoding", enc)
				hdr.Set("Accept-Encoding", "gzip, deflate, br")
				body := r.Request(`1`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"enc": enc}})
				path := "/mcp/encoded-" + enc
				reply, err := r.Post(ctx, testenv.MCPPost{Path: path, Body: encode(body), Header: hdr})
				if err != nil {
					t.Fatal(err)
				}
				got := s.RequestsTo(path)
				if len(got) != 1 {
					t.Fatalf("an allowed %s call did not go upstream: %d %q", enc, reply.Status, reply.Body)
				}
				if up := decodeBody(t, got[0]); !jsonEqual(string(up), string(body)) {
					t.Errorf("upstream received %q (Content-Encoding %q), which is not the call sent", got[0].Body, got[0].Header.Get("Content-Encoding"))
				}
				hdr = r.Headers("tools/call", "delete_project")
				hdr.Set("Content-Encoding", enc)
				before := s.Calls(testenv.MCPToolDelete)
				body = r.Request(`2`, "tools/call", map[string]any{"name": "delete_project", "arguments": map[string]any{}})
				if reply, err = r.Post(ctx, testenv.MCPPost{Body: encode(body), Header: hdr}); err != nil {
					t.Fatal(err)
				}
				wantRawDenied(t, reply.ByID(`2`), `2`, "no-delete")
				if s.Calls(testenv.MCPToolDelete) != before {
					t.Fatal("a denied call in a compressed body ran")
				}
			})
		}
	}
}

// decodeBody is what a request's body says once its Content-Encoding (if
// any) is undone.
func decodeBody(t *testing.T, r testenv.MCPRequest) []byte {
	t.Helper()
	var rd io.ReadCloser
	var err error
	switch r.Header.Get("Content-Encoding") {
	case "":
		return r.Body
	case "gzip":
		rd, err = gzip.NewReader(bytes.NewReader(r.Body))
	case "deflate":
		rd, err = zlib.NewReader(bytes.NewReader(r.Body))
	default:
		t.Fatalf("upstream received Content-Encoding %q", r.Header.Get("Content-Encoding"))
	}
	if err != nil {
		t.Fatalf("upstream received a body its Content-Encoding does not decode: %v", err)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("upstream received a body its Content-Encoding does not decode: %v", err)
	}
	return b
}

// MCP over plain http://, absolute-form through the proxy or HTTP/1 inside
// a CONNECT tunnel, is dissected exactly like MCP inside TLS.
func TestMCPPlainHTTP(t *testing.T) {
	e := &mcpEnv{peers: map[testenv.MCPMode]*testenv.MCPServer{}}
	for _, m := range []testenv.MCPMode{testenv.MCPStateful, testenv.MCPStateless, testenv.MCPLegacySSE} {
		e.peers[m] = startMCPPeer(t, testenv.MCPServerConfig{Mode: m}) // no CA: http://
	}
	// A CA so that a CONNECT to mcp.test (which the policy intercepts) is
	// opened: HTTP/1 first bytes then go to the exchange path.
	e.env = startProxyWith(t, mcpPolicy(mcpBase), nil, &tlsOpts{})
	for _, c := range []mcpCase{{testenv.MCPStateful, "2025-11-25"}, {testenv.MCPStateless, "2026-07-28"}, {testenv.MCPLegacySSE, "2024-11-05"}} {
		t.Run(c.String()+"/absolute-form", func(t *testing.T) {
			s := e.peers[c.mode]
			cl := e.connect(t, c, nil)
			args := map[string]any{"plain": true}
			res, err := callTool(t, cl, testenv.MCPToolEcho, args)
			wantEcho(t, res, err, args)
			before := s.Calls(testenv.MCPToolDelete)
			res, err = callTool(t, cl, testenv.MCPToolDelete, nil)
			wantDenied(t, res, err, "no-delete")
			if s.Calls(testenv.MCPToolDelete) != before {
				t.Fatal("the denied tool ran")
			}
			ev := waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolDelete, "decision": "deny", "rule": "no-delete"})
			if x := wantLinked(t, e.env, ev); x.str("scheme") != "http" {
				t.Errorf("exchange of a plain MCP call: scheme %q", x.str("scheme"))
			}
		})
	}
	t.Run("HTTP/1 in a CONNECT tunnel", func(t *testing.T) {
		s := e.peers[testenv.MCPStateless]
		r := testenv.NewMCPRaw(nil, testenv.MCPStateless, s.URL, "2026-07-28")
		body := r.Request(`"t"`, "tools/call", map[string]any{"name": "delete_project", "arguments": map[string]any{}})
		target := "mcp.test:" + s.Port
		conn := connectTunnel(t, e.env, target)
		req := "POST /mcp HTTP/1.1\r\nHost: " + target + "\r\nContent-Type: application/json\r\n" +
			"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n" +
			"Mcp-Method: tools/call\r\nMcp-Name: delete_project\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + string(body)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		resp, text := roundTrip(t, conn, bufio.NewReader(conn), req)
		reply := &testenv.MCPReply{Status: resp.StatusCode}
		reply.Messages = testenv.MCPMessages(resp.Header.Get("Content-Type"), []byte(text))
		wantRawDenied(t, reply.ByID(`"t"`), `"t"`, "no-delete")
		if s.Calls(testenv.MCPToolDelete) != 0 {
			t.Fatal("the denied tool ran")
		}
	})
}

// A host a servers entry names is intercepted whether or not intercept:
// lists it: without interception nothing could be decided.
func TestMCPNamedHostIntercepted(t *testing.T) {
	policy := strings.Replace(mcpPolicy(mcpBase), "intercept: [mcp.test, other.test]\n", "", 1)
	if strings.Contains(policy, "intercept:") {
		t.Fatal("policy still intercepts")
	}
	e := newMCPEnv(t, policy, testenv.MCPServerConfig{}, testenv.MCPStateful)
	c := mcpCase{testenv.MCPStateful, "2025-11-25"}
	cl := e.connect(t, c, nil) // trusts agentg's CA only
	res, err := callTool(t, cl, testenv.MCPToolDelete, nil)
	wantDenied(t, res, err, "no-delete")
	if e.peers[c.mode].Calls(testenv.MCPToolDelete) != 0 {
		t.Fatal("the denied tool ran")
	}
}

// MCP on a host no servers entry names falls under unknown_servers.
func TestMCPUnknownServers(t *testing.T) {
	for _, mode := range []string{"deny", "allow"} {
		t.Run(mode, func(t *testing.T) {
			policy := mcpPolicy(`
mcp:
  default: allow
  unknown_servers: ` + mode + `
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
`)
			upCA, err := testenv.NewCA("mcp upstream test root")
			if err != nil {
				t.Fatal(err)
			}
			s := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStateless, CA: upCA, Hosts: []string{"other.test"}})
			e := &mcpEnv{env: startProxyWith(t, policy, nil, &tlsOpts{roots: upCA.Pool()}), upCA: upCA,
				peers: map[testenv.MCPMode]*testenv.MCPServer{testenv.MCPStateless: s}}
			cfg := e.via("", "")
			cfg.Revision = "2026-07-28"
			cl, err := testenv.ConnectMCP(mcpCtx(t), s.Mode, s.URL, cfg)
			if err == nil {
				defer cl.Close()
				_, err = callTool(t, cl, testenv.MCPToolEcho, nil)
			}
			switch mode {
			case "deny":
				if err == nil || s.Calls(testenv.MCPToolEcho) != 0 {
					t.Fatalf("MCP on an unnamed host under unknown_servers: deny: err %v, echo ran %d times", err, s.Calls(testenv.MCPToolEcho))
				}
			case "allow":
				if err != nil || s.Calls(testenv.MCPToolEcho) != 1 {
					t.Fatalf("MCP on an unnamed host under unknown_servers: allow: err %v, echo ran %d times", err, s.Calls(testenv.MCPToolEcho))
				}
				waitMCPEvent(t, e.env, map[string]any{"tool": testenv.MCPToolEcho, "decision": "allow"})
			}
		})
	}
}
