package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7, 2025-11-25 tasks: "tasks/result results are redacted like call
// results". A task-augmented tools/call is answered with a task handle;
// the tool's result comes later, in another exchange, to a tasks/result
// that names only the task. agentg links the task to the tool that
// created it, so the result gets that tool's result redactions. The Go
// SDK has no tasks, so the server here is a net/http handler answering per
// schema/2025-11-25 (CreateTaskResult, tasks/result's CallToolResult with
// the related-task _meta).

// taskServer runs every task-augmented tools/call at once and keeps its
// result for tasks/result.
type taskServer struct {
	mu      sync.Mutex
	n       int
	results map[string]string // task id → the tool's answer text
	ran     map[string]int    // tool → runs
}

func (s *taskServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name   string          `json:"name"`
			Task   json.RawMessage `json:"task"`
			TaskID string          `json:"taskId"`
		} `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var result any
	switch req.Method {
	case "tools/call":
		s.ran[req.Params.Name]++
		text := req.Params.Name + " says " + testenv.MCPSecret
		if req.Params.Task == nil {
			result = map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}}
			break
		}
		s.n++
		id := fmt.Sprintf("786512e2-%04d", s.n)
		s.results[id] = text
		now := time.Now().UTC().Format(time.RFC3339)
		result = map[string]any{"task": map[string]any{"taskId": id, "status": "working", "createdAt": now, "lastUpdatedAt": now, "ttl": 60000, "pollInterval": 100}}
	case "tasks/result":
		text, ok := s.results[req.Params.TaskID]
		if !ok {
			text = "orphan result " + testenv.MCPSecret // a task created elsewhere (another replica, before a restart)
		}
		result = map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}, "isError": false,
			"_meta": map[string]any{"io.modelcontextprotocol/related-task": map[string]any{"taskId": req.Params.TaskID}}}
	default:
		http.Error(w, "unexpected "+req.Method, http.StatusBadRequest)
		return
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func TestMCPTaskResultRedacted(t *testing.T) {
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := upCA.Leaf([]string{"mcp.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ts := &taskServer{results: map[string]string{}, ran: map[string]int{}}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Quiet: true, Handler: ts})
	t.Cleanup(up.Close)
	// Only secret's results are redacted: a tasks/result that agentg
	// could not tie to its tool would pass unredacted.
	policy := mcpPolicy(mcpBase + `
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [results]
      tools: "srv.secret"
      id: aws-keys
`)
	e := &mcpEnv{env: startProxyWith(t, policy, nil, &tlsOpts{roots: upCA.Pool()}), upCA: upCA}
	hc := testenv.MCPHTTPClient(e.via("", ""))
	t.Cleanup(hc.CloseIdleConnections)
	n := 0
	post := func(body string) (int, map[string]any) {
		t.Helper()
		n++
		req, _ := http.NewRequest("POST", "https://"+up.HostPort("mcp.test")+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
		return resp.StatusCode, m
	}
	text := func(m map[string]any) string {
		b, _ := json.Marshal(m["result"])
		return string(b)
	}
	call := func(tool string) string {
		t.Helper()
		_, m := post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{},"task":{"ttl":60000}}}`, n, tool))
		var res struct {
			Result struct {
				Task struct {
					TaskID string `json:"taskId"`
				} `json:"task"`
			} `json:"result"`
		}
		b, _ := json.Marshal(m)
		json.Unmarshal(b, &res)
		if res.Result.Task.TaskID == "" {
			t.Fatalf("task-augmented call to %s: %s, want a CreateTaskResult", tool, b)
		}
		return res.Result.Task.TaskID
	}
	result := func(task string) string {
		t.Helper()
		_, m := post(fmt.Sprintf(`{"jsonrpc":"2.0","id":"r%d","method":"tasks/result","params":{"taskId":%q}}`, n, task))
		return text(m)
	}

	secretTask, echoTask := call("secret"), call("echo")
	// Each tasks/result is its own POST (its own exchange).
	if got := result(secretTask); strings.Contains(got, testenv.MCPSecret) || !strings.Contains(got, "[REDACTED:aws-keys]") {
		t.Fatalf("tasks/result of secret's task: %s, want the key redacted as secret's call results are", got)
	}
	ev := waitMCPEventWhere(t, e.env, "the tasks/result event", func(ev event) bool {
		return ev.str("method") == "tasks/result" && ev.str("task") == secretTask
	})
	if ev.str("tool") != "secret" || !strings.Contains(fmt.Sprint(ev["redactions"]), "aws-keys") {
		t.Errorf("tasks/result event %v: want tool secret and the aws-keys redaction", ev)
	}
	created := waitMCPEventWhere(t, e.env, "the task-creating call's event", func(ev event) bool {
		return ev.str("method") == "tools/call" && ev.str("task") == secretTask
	})
	if !strings.Contains(ev.str("reason"), created.str("id")) {
		t.Errorf("tasks/result event reason %q does not name the creating call's event %s", ev.str("reason"), created.str("id"))
	}
	wantLinked(t, e.env, ev)
	// The link is the tool's: echo's results are not redacted.
	if got := result(echoTask); !strings.Contains(got, testenv.MCPSecret) {
		t.Fatalf("tasks/result of echo's task: %s, want it as the server sent it (the redaction is secret's)", got)
	}
	// A task agentg did not see created: every result redaction applies.
	if got := result("786512e2-unknown"); strings.Contains(got, testenv.MCPSecret) || !strings.Contains(got, "[REDACTED:aws-keys]") {
		t.Fatalf("tasks/result of an unknown task: %s, want every result redaction applied", got)
	}
	if ts.ran["secret"] != 1 || ts.ran["echo"] != 1 {
		t.Errorf("tool runs %v", ts.ran)
	}
}
