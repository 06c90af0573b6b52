package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// The guard in front of a real HTTP server (an httptest origin that
// records every body it receives), the way the proxy calls it.
func guardFront(t testing.TB, policy string, reply http.HandlerFunc) (http.Handler, func() []string, *bytes.Buffer) {
	return guardFrontWith(t, policy, reply, store.Options{})
}

func guardFrontWith(t testing.TB, policy string, reply http.HandlerFunc, opts store.Options) (http.Handler, func() []string, *bytes.Buffer) {
	t.Helper()
	return guardFrontX(t, policy, reply, opts, Exchange{Server: "srv", Parent: "p"})
}

// guardFrontX is guardFrontWith for exchanges like x (its Engine is the
// policy's).
func guardFrontX(t testing.TB, policy string, reply http.HandlerFunc, opts store.Options, x Exchange) (http.Handler, func() []string, *bytes.Buffer) {
	t.Helper()
	eng, err := rules.Parse("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	opts.DataDir = t.TempDir()
	st, err := store.NewMemory(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var mu sync.Mutex
	var got []string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		if reply != nil {
			reply(w, r)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(origin.Close)
	next := forwardTo(http.DefaultTransport, origin.URL)
	var log bytes.Buffer
	g := &Guard{Log: audit.New(&log), State: st, Limits: limit.NewRates(limit.Options{})}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := x
		x.Engine, x.Upstream = eng, next
		g.Serve(w, r, x)
	})
	return h, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }, &log
}

// forwardTo is the forwarder of the guard's tests: it sends each request
// to url through rt and copies the answer back. It carries on when the
// client goes (what it sends is not bound to the client's request), as a
// proxy that already holds the answer does.
func forwardTo(rt http.RoundTripper, url string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, _ := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, url, r.Body)
		out.Header = r.Header.Clone()
		resp, err := rt.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		writeHead(w, resp)
		io.Copy(w, resp.Body)
	})
}

// writeHead writes an upstream answer's header and status, as a
// forwarder does, for the body to follow.
func writeHead(w http.ResponseWriter, resp *http.Response) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
}

// A request method sent as a notification (no id) is never passed: a
// server may run it, and there is no id to answer a refusal for.
func TestGuardRefusesRequestMethodsAsNotifications(t *testing.T) {
	h, received, log := guardFront(t, testPolicy, nil)
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_project","arguments":{}}}`,
		`[{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_project","arguments":{}}},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
	} {
		r := httptest.NewRequest("POST", "https://mcp.test/mcp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("MCP-Protocol-Version", "2025-03-26")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		for _, b := range received() {
			if strings.Contains(b, "tools/call") {
				t.Fatalf("the server received a tools/call notification: %s", b)
			}
		}
	}
	if !strings.Contains(log.String(), "builtin:mcp-notification") {
		t.Fatalf("no event for the refused notification:\n%s", log.String())
	}
	// The plain notification of the batch still reached the server.
	if got := received(); len(got) != 1 || !strings.Contains(got[0], "notifications/initialized") {
		t.Fatalf("server received %q, want only the initialized notification", got)
	}
}

const testPolicy = "hosts:\n  - allow: mcp.test\nmcp:\n  servers:\n    - name: srv\n      url: mcp.test\n  tools:\n    - deny: \"srv.delete_*\"\n      id: no-delete\n"

// An answer the server compressed although agentg stripped
// Accept-Encoding cannot be read, so it is refused, with an error the
// client can read (not the server's encoding label on agentg's JSON).
func TestGuardRefusesEncodedAnswer(t *testing.T) {
	h, _, _ := guardFront(t, testPolicy, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "br")
		w.Write([]byte("\x0b\x02\x80secret-result"))
	})
	r := httptest.NewRequest("POST", "https://mcp.test/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	if w.Code != http.StatusBadGateway || w.Header().Get("Content-Encoding") != "" || strings.Contains(body, "secret-result") ||
		!strings.Contains(body, "Content-Encoding") {
		t.Fatalf("answered %d %q (encoding %q), want a readable 502 naming the encoding", w.Code, body, w.Header().Get("Content-Encoding"))
	}
}

// Under pinning: deny a tool whose definition could not be pinned (the
// store is full) is hidden like a changed one, never shown unchecked.
func TestGuardHidesUnpinnableTools(t *testing.T) {
	list := `{"jsonrpc":"2.0","id":1,"result":{"tools":[` +
		`{"name":"alpha","inputSchema":{"type":"object"}},{"name":"beta","inputSchema":{"type":"object"}}]}}`
	h, _, _ := guardFrontWith(t, testPolicy+"  pinning: deny\n", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, list)
	}, store.Options{MaxToolsPerServer: 1})
	r := httptest.NewRequest("POST", "https://mcp.test/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	if strings.Count(body, `"name":`) != 1 || !strings.Contains(body, `"tools":[`) {
		t.Fatalf("listed %q, want exactly one tool: the store could pin only one", body)
	}
}

// On a governed server a message sent under another method than POST is
// refused, never passed unread.
func TestGuardRefusesOtherMethods(t *testing.T) {
	h, received, _ := guardFront(t, testPolicy, nil)
	for _, m := range []string{"PUT", "PATCH"} {
		r := httptest.NewRequest(m, "https://mcp.test/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_project","arguments":{}}}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s answered %d, want 405", m, w.Code)
		}
	}
	if got := received(); len(got) != 0 {
		t.Fatalf("the server received %q", got)
	}
}

// FuzzGuard sends arbitrary bodies through the guard to a real server
// and reads what reached the server the way a lenient server does
// (encoding/json: case-insensitive names, the last duplicate wins): a call
// to a denied tool must never be among it, however the body was spelled.
func FuzzGuard(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_project","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_x"}}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"delete_x"}}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_x"}}`,
	} {
		f.Add([]byte(seed))
	}
	h, received, _ := guardFront(f, testPolicy, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(received())
		r := httptest.NewRequest("POST", "https://mcp.test/mcp", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("MCP-Protocol-Version", "2025-03-26")
		h.ServeHTTP(httptest.NewRecorder(), r)
		for _, b := range received()[before:] {
			if name, ok := deniedCallIn([]byte(b)); ok {
				t.Fatalf("the server received a call to %q in %q (sent %q)", name, b, body)
			}
		}
	})
}

// deniedCallIn reads b as encoding/json would, as one message or a batch.
func deniedCallIn(b []byte) (string, bool) {
	type msg struct {
		Method string
		Params struct{ Name string }
	}
	var ms []msg
	if err := json.Unmarshal(b, &ms); err != nil {
		var m msg
		if json.Unmarshal(b, &m) != nil {
			return "", false
		}
		ms = []msg{m}
	}
	for _, m := range ms {
		if strings.EqualFold(m.Method, "tools/call") && strings.HasPrefix(strings.ToLower(m.Params.Name), "delete_") {
			return m.Params.Name, true
		}
	}
	return "", false
}

// BenchmarkGuardJSONCall is one allowed tools/call with a JSON answer
// through the guard, origin round trip included.
func BenchmarkGuardJSONCall(b *testing.B) {
	const answer = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`
	h, _, _ := guardFront(b, testPolicy, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	})
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":"y"}}}`)
	for b.Loop() {
		r := httptest.NewRequest("POST", "https://mcp.test/mcp", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Mcp-Session-Id", "s1")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

// Every event the guard writes says which door its exchange came in
// through and, for a redirected connection, where it was going: the
// lifecycle event of a first sighting, the pins of a first tools/list,
// the decision of a call, and the refusal of a body.
func TestGuardEventsCarryDoor(t *testing.T) {
	list := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"alpha","inputSchema":{"type":"object"}}]}}`
	h, _, log := guardFrontX(t, testPolicy, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, list)
	}, store.Options{}, Exchange{Server: "srv", Parent: "p", Host: "mcp.test", Port: 443,
		Door: "transparent", OriginalDst: "192.0.2.7:443"})
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_project","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":3,`,
	} {
		r := httptest.NewRequest("POST", "https://mcp.test/mcp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("MCP-Protocol-Version", "2025-06-18")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	rules := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if ev["door"] != "transparent" || ev["original_dst"] != "192.0.2.7:443" {
			t.Errorf("event without the exchange's door and original destination: %s", line)
		}
		rules[fmt.Sprint(ev["rule"])] = true
	}
	for _, want := range []string{"mcp:server-new", "mcp:pin-new", "no-delete"} {
		if !rules[want] {
			t.Errorf("no %s event among %v:\n%s", want, rules, log.String())
		}
	}
	if len(rules) < 4 {
		t.Errorf("the malformed body wrote no refusal: %v", rules)
	}
}
