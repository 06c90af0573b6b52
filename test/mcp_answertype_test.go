package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7, fail closed: on a governed server, an answer to a POST under a
// content type that is neither application/json nor text/event-stream
// does not pass undissected. It is withheld, and the client gets a
// JSON-RPC error for its request with an event, unless it carries nothing
// a client could read as a message: an empty 202, or an HTTP error status
// whose body is not JSON-RPC (the client needs 401 to authorise and 404 to
// learn its session expired and start a new one).
func TestMCPAnswerContentType(t *testing.T) {
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	const result = `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"undissected"}]}}`
	big := strings.Repeat("<p>please log in</p>", 10<<10) // 200 KiB, past max_message
	var hits atomic.Int64
	answers := map[string]func(w http.ResponseWriter){
		"text-result": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, result)
		},
		"no-type-result": func(w http.ResponseWriter) {
			w.Header()["Content-Type"] = nil // no sniffing either
			io.WriteString(w, result)
		},
		"html-200": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>hello</html>")
		},
		"jsonrpc-error-400": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, result)
		},
		"big-200": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/octet-stream")
			io.WriteString(w, big)
		},
		"auth-401": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "<html>log in</html>")
		},
		"big-401": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, big)
		},
		"expired-404": func(w http.ResponseWriter) {
			http.Error(w, "session not found", http.StatusNotFound)
		},
		"accepted-202": func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) },
	}
	cert, err := upCA.Leaf([]string{"mcp.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Quiet: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		answers[strings.TrimPrefix(r.URL.Path, "/mcp/")](w)
	})})
	t.Cleanup(up.Close)
	e := &mcpEnv{env: startProxyWith(t, mcpPolicy(mcpBase+"  max_message: 64KiB\n"), nil, &tlsOpts{roots: upCA.Pool()}), upCA: upCA}
	hc := testenv.MCPHTTPClient(e.via("", ""))
	t.Cleanup(hc.CloseIdleConnections)

	for _, tc := range []struct {
		path     string
		status   int    // what the client gets
		body     string // a part of what it gets
		withheld bool
	}{
		{"text-result", 502, "", true},
		{"no-type-result", 502, "", true},
		{"html-200", 502, "", true},
		{"jsonrpc-error-400", 502, "", true},
		{"big-200", 502, "", true},
		{"auth-401", 401, "log in", false},
		{"big-401", 401, big, false},
		{"expired-404", 404, "session not found", false},
		{"accepted-202", 202, "", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			before := hits.Load()
			req, _ := http.NewRequest("POST", "https://"+up.HostPort("mcp.test")+"/mcp/"+tc.path,
				strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", "2025-06-18")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if hits.Load() != before+1 {
				t.Fatalf("the server saw %d requests, want 1 (the call is allowed)", hits.Load()-before)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.300q", resp.StatusCode, tc.status, body)
			}
			if !tc.withheld {
				if !bytes.Contains(body, []byte(tc.body)) || tc.body == "" && len(body) != 0 {
					t.Fatalf("body %.200q, want the server's (%.40q)", body, tc.body)
				}
				if tc.path == "auth-401" && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("the 401's WWW-Authenticate did not reach the client")
				}
				return
			}
			if bytes.Contains(body, []byte("undissected")) || bytes.Contains(body, []byte("<html>")) || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("withheld answer reached the client: %s %q", resp.Header.Get("Content-Type"), body)
			}
			var m struct {
				ID    json.RawMessage `json:"id"`
				Error struct {
					Code int             `json:"code"`
					Data json.RawMessage `json:"data"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &m); err != nil || string(m.ID) != "7" || m.Error.Code != -32603 || dataRule(m.Error.Data) != "builtin:mcp-answer-type" {
				t.Fatalf("withheld answer: %q (%v), want a JSON-RPC error for id 7 naming builtin:mcp-answer-type", body, err)
			}
			ev := waitMCPEventWhere(t, e.env, "refused-answer for "+tc.path, func(ev event) bool {
				return ev.str("action") == "refused-answer" && ev.str("rule") == "builtin:mcp-answer-type" &&
					ev.str("decision") == "deny" && ev.str("path") == "/mcp/"+tc.path
			})
			wantLinked(t, e.env, ev)
			waitMCPEventWhere(t, e.env, "the call's event with the error", func(ev event) bool {
				return ev.str("method") == "tools/call" && ev.num("error_code") == -32603 && ev.str("parent") != "" &&
					exchangeOf(e.env, ev) != nil && exchangeOf(e.env, ev).str("path") == "/mcp/"+tc.path
			})
		})
	}
}
