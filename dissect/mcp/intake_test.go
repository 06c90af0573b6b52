package mcp

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	store "github.com/agentg/agentg/state"
)

// The intake through the guard, table by table: what is refused (and
// how), what reaches the origin, and under which Content-Type.
func TestIntake(t *testing.T) {
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}`
	utf16 := string(encode16(call, binary.LittleEndian, true))
	type tc struct {
		name     string
		governed bool
		unknown  string // unknown_servers
		method   string
		header   http.Header
		body     string
		status   int    // what the client gets
		wantCT   string // the Content-Type the origin saw; "-" when nothing reached it
	}
	ct := func(vs ...string) http.Header { return http.Header{"Content-Type": vs} }
	for _, c := range []tc{
		{"utf-7 refused", true, "allow", "POST", ct("application/json; charset=utf-7"), strings.Replace(call, "tools/call", "tools+AC8-call", 1), 415, "-"},
		{"utf-16 refused", true, "allow", "POST", ct("application/json; charset=utf-16"), utf16, 415, "-"},
		{"two content types", true, "allow", "POST", ct("application/json", "application/json; charset=utf-7"), call, 415, "-"},
		{"UTF-8 canonical", true, "allow", "POST", ct(`application/json; charset="UTF-8"`), call, 202, "application/json"},
		{"+json canonical", true, "allow", "POST", ct("application/vnd.x+json"), call, 202, "application/json"},
		{"utf8 alias", true, "allow", "POST", ct("application/json;charset=utf8"), call, 202, "application/json"},
		{"escaped jsonrpc, unknown deny", false, "deny", "POST", ct("application/json"), `{"jsonrp\u0063":"2.0","id":1,"method":"tools/call","id":2}`, 400, "-"},
		{"escaped jsonrpc, unknown allow", false, "allow", "POST", ct("application/json"), `{"jsonrp\u0063":"2.0","id":1,"method":"tools/call","id":2}`, 400, "-"},
		{"form, unknown", false, "deny", "POST", ct("application/x-www-form-urlencoded"), "jsonrpc=2.0&method=tools%2Fcall", 415, "-"},
		{"utf-16 bom, no charset, unknown", false, "deny", "POST", ct("application/json"), utf16, 400, "-"},
		{"not MCP, unknown", false, "deny", "POST", ct("application/json; charset=utf-8"), `{"query":"x"}`, 202, "application/json; charset=utf-8"},
		{"latin-1 not MCP, unknown", false, "deny", "POST", ct("text/plain; charset=iso-8859-1"), "caf\xe9", 202, "text/plain; charset=iso-8859-1"},
		{"GET with a body", true, "allow", "GET", ct("application/json"), call, 400, "-"},
		{"DELETE with a body", true, "allow", "DELETE", ct("application/json"), call, 400, "-"},
		{"DELETE", true, "allow", "DELETE", nil, "", 202, ""},
		{"PATCH", true, "allow", "PATCH", ct("application/json"), call, 405, "-"},
		{"upgrade", true, "allow", "GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, "", 403, "-"},
		{"PUT JSON-RPC, unknown", false, "allow", "PUT", ct("application/json"), call, 400, "-"},
		{"PUT plain, unknown", false, "allow", "PUT", ct("text/plain"), "hello", 202, "text/plain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := "-"
			x := Exchange{Parent: "p"}
			if c.governed {
				x.Server = "srv"
			}
			h, _, _ := guardFrontX(t, "mcp:\n  unknown_servers: "+c.unknown+"\n  servers:\n    - name: srv\n      url: mcp.test\n",
				func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					seen = r.Header.Get("Content-Type")
					mu.Unlock()
					w.WriteHeader(http.StatusAccepted)
				}, store.Options{}, x)
			req := httptest.NewRequest(c.method, "http://mcp.test/mcp", strings.NewReader(c.body))
			if c.body == "" {
				req.Body, req.ContentLength = http.NoBody, 0
			}
			for k, vs := range c.header {
				req.Header[k] = vs
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			mu.Lock()
			defer mu.Unlock()
			if rec.Code != c.status || seen != c.wantCT {
				t.Fatalf("%d %q, origin saw Content-Type %q; want %d, %q", rec.Code, rec.Body.String(), seen, c.status, c.wantCT)
			}
		})
	}
}

// An error answer whose text only mentions jsonrpc is no message: it
// reaches the client, while a JSON-RPC one under text/plain is withheld.
func TestIntakeErrorAnswers(t *testing.T) {
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}`
	for _, c := range []struct {
		body   string
		status int
	}{
		{"bad request: jsonrpc=1.0 is not 2.0", http.StatusBadRequest},
		{`{"jsonrp\u0063":"2.0","id":1,"result":{}}`, http.StatusBadGateway},
	} {
		h, _, _ := guardFrontX(t, "mcp:\n  servers:\n    - name: srv\n      url: mcp.test\n", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(c.body))
		}, store.Options{}, Exchange{Server: "srv", Parent: "p"})
		req := httptest.NewRequest("POST", "http://mcp.test/mcp", strings.NewReader(call))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("a 400 answering %q: %d %s, want %d", c.body, rec.Code, rec.Body, c.status)
		}
	}
}

// encode16 is s in UTF-16 in byte order o, after a byte-order mark when
// bom (as wire's lenient tests write it).
func encode16(s string, o binary.AppendByteOrder, bom bool) []byte {
	var b []byte
	if bom {
		b = o.AppendUint16(b, 0xfeff)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = o.AppendUint16(b, u)
	}
	return b
}
