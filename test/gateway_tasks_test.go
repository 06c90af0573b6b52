package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17: 2025-11-25 tasks through the gateway, against the TypeScript
// SDK's task-capable server (task_server.mjs).

// rpcOut is what one raw JSON-RPC request to the gateway got: the
// notifications before the answer, and the answer.
type rpcOut struct {
	notes  []map[string]any
	result map[string]any
	err    map[string]any
}

// gatewayRPC sends one JSON-RPC request on the gateway session sid (a
// 2025-11-25 one) and reads the answer, JSON or an event stream.
func gatewayRPC(t *testing.T, ctx context.Context, endpoint, sid, method string, params any) rpcOut {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d", method, resp.StatusCode)
	}
	var msgs []map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok && strings.TrimSpace(d) != "" {
				var m map[string]any
				if err := json.Unmarshal([]byte(d), &m); err != nil {
					t.Fatalf("%s: event %q: %v", method, d, err)
				}
				msgs = append(msgs, m)
			}
		}
	} else {
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		msgs = append(msgs, m)
	}
	var out rpcOut
	for _, m := range msgs {
		switch {
		case m["method"] != nil:
			out.notes = append(out.notes, m)
		case m["result"] != nil:
			out.result, _ = m["result"].(map[string]any)
		case m["error"] != nil:
			out.err, _ = m["error"].(map[string]any)
		}
	}
	if out.result == nil && out.err == nil {
		t.Fatalf("%s: no answer in %v", method, msgs)
	}
	return out
}

// TestGatewayTasks: a client creates a task with a task-augmented
// tools/call through the gateway and polls it, fetches its result, lists
// and cancels tasks; the task ids it sees are the gateway's, routed to
// the server that made the task; another client session can neither read
// nor list nor cancel them; the guard decides a task-augmented call as any
// tools/call (a denied one never runs), and its events name the gateway
// request as their parent.
func TestGatewayTasks(t *testing.T) {
	peer, err := testenv.StartNodePeer("task_server.mjs", nil)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(peer.Close)
	url := "http://" + peer.Addr + "/mcp"
	ag := startGatewayAgentg(t, `mcp:
  servers:
    - name: work
      endpoint: `+url+`
      prefix: w
    - name: locked
      endpoint: `+url+`
      prefix: l
  tools:
    - deny: locked.slow
      id: no-locked-slow
`)
	endpoint := "http://" + ag.Gateway + "/mcp"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The gateway says it serves tasks.
	init := gatewayRPC(t, ctx, endpoint, "", "initialize", map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "raw", "version": "1"}})
	caps, _ := init.result["capabilities"].(map[string]any)
	if tc, ok := caps["tasks"].(map[string]any); !ok || tc["requests"] == nil || tc["list"] == nil || tc["cancel"] == nil {
		t.Fatalf("initialize: capabilities %v", caps)
	}

	one := connectGateway(t, ctx, endpoint, "2025-11-25", nil)
	other := connectGateway(t, ctx, endpoint, "2025-11-25", nil)

	// Denied: refused by the guard, never run.
	denied := gatewayRPC(t, ctx, endpoint, one.ID(), "tools/call", map[string]any{
		"name": "l.slow", "arguments": map[string]any{}, "task": map[string]any{"ttl": 60000}})
	if denied.err == nil {
		t.Fatalf("l.slow as a task: %v", denied.result)
	}

	// Created: the gateway's id, and the server's status notification
	// under it.
	created := gatewayRPC(t, ctx, endpoint, one.ID(), "tools/call", map[string]any{
		"name": "w.slow", "arguments": map[string]any{"ms": 300, "msg": "hello"}, "task": map[string]any{"ttl": 60000}})
	task, _ := created.result["task"].(map[string]any)
	id, _ := task["taskId"].(string)
	if id == "" || task["status"] != "working" {
		t.Fatalf("w.slow as a task: %v %v", created.result, created.err)
	}
	if strings.Contains(peer.Output(), id) || len(id) < 26 {
		t.Errorf("the client sees task id %q, not one of the gateway's", id)
	}
	var sawStatus bool
	for _, n := range created.notes {
		if n["method"] == "notifications/tasks/status" {
			p, _ := n["params"].(map[string]any)
			if p["taskId"] != id {
				t.Errorf("notifications/tasks/status names %v, want %s", p["taskId"], id)
			}
			sawStatus = true
		}
	}
	if !sawStatus {
		t.Errorf("no notifications/tasks/status passed on: %v", created.notes)
	}

	got := gatewayRPC(t, ctx, endpoint, one.ID(), "tasks/get", map[string]any{"taskId": id})
	if got.result["taskId"] != id || (got.result["status"] != "working" && got.result["status"] != "completed") {
		t.Fatalf("tasks/get: %v %v", got.result, got.err)
	}
	// Another session: not found, listed nowhere, not cancelled.
	for _, method := range []string{"tasks/get", "tasks/result", "tasks/cancel"} {
		o := gatewayRPC(t, ctx, endpoint, other.ID(), method, map[string]any{"taskId": id})
		if o.err == nil || o.err["code"] != float64(-32602) {
			t.Errorf("%s of another session's task: %v %v", method, o.result, o.err)
		}
	}
	if o := gatewayRPC(t, ctx, endpoint, other.ID(), "tasks/list", map[string]any{}); len(o.result["tasks"].([]any)) != 0 {
		t.Errorf("another session lists %v", o.result["tasks"])
	}

	res := gatewayRPC(t, ctx, endpoint, one.ID(), "tasks/result", map[string]any{"taskId": id})
	b, _ := json.Marshal(res.result)
	if !strings.Contains(string(b), `done {\"ms\":300,\"msg\":\"hello\"}`) {
		t.Fatalf("tasks/result: %s %v", b, res.err)
	}
	if meta, _ := res.result["_meta"].(map[string]any); meta != nil {
		if rt, _ := meta["io.modelcontextprotocol/related-task"].(map[string]any); rt != nil && rt["taskId"] != id {
			t.Errorf("tasks/result names task %v, want %s", rt["taskId"], id)
		}
	}
	if got := gatewayRPC(t, ctx, endpoint, one.ID(), "tasks/get", map[string]any{"taskId": id}); got.result["status"] != "completed" {
		t.Errorf("tasks/get after the result: %v", got.result)
	}

	// Cancelled.
	long := gatewayRPC(t, ctx, endpoint, one.ID(), "tools/call", map[string]any{
		"name": "w.slow", "arguments": map[string]any{"ms": 30000}, "task": map[string]any{}})
	longID, _ := long.result["task"].(map[string]any)["taskId"].(string)
	if c := gatewayRPC(t, ctx, endpoint, one.ID(), "tasks/cancel", map[string]any{"taskId": longID}); c.result["status"] != "cancelled" || c.result["taskId"] != longID {
		t.Fatalf("tasks/cancel: %v %v", c.result, c.err)
	}
	list := gatewayRPC(t, ctx, endpoint, one.ID(), "tasks/list", map[string]any{})
	ids := map[string]any{}
	for _, x := range list.result["tasks"].([]any) {
		m := x.(map[string]any)
		ids[m["taskId"].(string)] = m["status"]
	}
	if len(ids) != 2 || ids[id] != "completed" || ids[longID] != "cancelled" {
		t.Errorf("tasks/list: %v", list.result)
	}

	// The server ran slow twice: the denied call never ran.
	if n := strings.Count(peer.Output(), "ran slow"); n != 2 {
		t.Errorf("the server ran slow %d times, want 2\n%s", n, peer.Output())
	}
	if _, err := ag.WaitEvent(ctx, func(m map[string]any) bool {
		return m["door"] == "gateway" && m["server"] == "locked" && m["tool"] == "slow" && m["decision"] == "deny" && m["rule"] == "no-locked-slow"
	}); err != nil {
		t.Fatalf("%v\n%s", err, gatewayLog(t, ag))
	}
	ev, err := ag.WaitEvent(ctx, func(m map[string]any) bool {
		return m["door"] == "gateway" && m["server"] == "work" && m["tool"] == "slow" && m["method"] == "tools/call" && m["decision"] == "allow"
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, gatewayLog(t, ag))
	}
	if p, _ := ev["parent"].(string); p == "" {
		t.Errorf("the task call's event has no parent: %v", ev)
	}
}

// TestGatewayTasksTypeScriptClient: the TypeScript SDK's own task client
// (callToolStream with a task: it creates the task, polls tasks/get and
// fetches tasks/result) completes a task through the gateway, and lists
// it under the same id.
func TestGatewayTasksTypeScriptClient(t *testing.T) {
	peer, err := testenv.StartNodePeer("task_server.mjs", nil)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(peer.Close)
	ag := startGatewayAgentg(t, "mcp:\n  servers:\n    - name: work\n      endpoint: http://"+peer.Addr+"/mcp\n      prefix: w\n")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	node, dir, err := testenv.Node()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "peers", "task_client.mjs"), "http://"+ag.Gateway+"/mcp", "w.slow")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("task_client.mjs: %v\n%s", err, out)
	}
	steps := map[string]tsStep{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s tsStep
		if json.Unmarshal([]byte(line), &s) != nil {
			t.Fatalf("task_client.mjs printed %q", line)
		}
		steps[s.Step] = s
	}
	for _, name := range []string{"connect", "stream", "list"} {
		if s := steps[name]; s.Error != nil || s.Result == nil {
			t.Fatalf("step %s: %+v\n%s\n%s", name, s, out, gatewayLog(t, ag))
		}
	}
	var msgs []struct {
		Type   string
		Task   struct{ TaskID, Status string }
		Result struct {
			Content []struct{ Text string }
		}
		Error string
	}
	if err := json.Unmarshal(steps["stream"].Result, &msgs); err != nil {
		t.Fatal(err)
	}
	var id, text string
	for _, m := range msgs {
		switch m.Type {
		case "taskCreated":
			id = m.Task.TaskID
		case "result":
			for _, c := range m.Result.Content {
				text += c.Text
			}
		case "error":
			t.Fatalf("the task stream failed: %s\n%s", m.Error, steps["stream"].Result)
		}
	}
	if id == "" || !strings.Contains(text, `done {"ms":200,"msg":"ts"}`) {
		t.Fatalf("the task stream: %s", steps["stream"].Result)
	}
	if !strings.Contains(string(steps["list"].Result), `"taskId":"`+id+`"`) {
		t.Errorf("tasks/list: %s (task %s)", steps["list"].Result, id)
	}
}

// TestGatewayTaskInput: a task that needs input (input_required): the
// server's elicitation, sent during tasks/result, reaches the client
// session through the gateway, and the client's answer reaches the
// server, which completes the task with it.
func TestGatewayTaskInput(t *testing.T) {
	peer, err := testenv.StartNodePeer("task_server.mjs", nil)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(peer.Close)
	ag := startGatewayAgentg(t, "mcp:\n  servers:\n    - name: work\n      endpoint: http://"+peer.Addr+"/mcp\n      prefix: w\n")
	endpoint := "http://" + ag.Gateway + "/mcp"
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	asked := make(chan string, 1)
	c := connectGateway(t, ctx, endpoint, "2025-11-25", &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, r *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			asked <- r.Params.Message
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
	})
	created := gatewayRPC(t, ctx, endpoint, c.ID(), "tools/call", map[string]any{"name": "w.ask", "task": map[string]any{}})
	task, _ := created.result["task"].(map[string]any)
	id, _ := task["taskId"].(string)
	if id == "" {
		t.Fatalf("w.ask as a task: %v %v", created.result, created.err)
	}
	res := gatewayRPC(t, ctx, endpoint, c.ID(), "tasks/result", map[string]any{"taskId": id})
	b, _ := json.Marshal(res.result)
	if !strings.Contains(string(b), `answer {\"name\":\"Ada\"}`) {
		t.Fatalf("tasks/result: %s %v\n%s\n%s", b, res.err, peer.Output(), gatewayLog(t, ag))
	}
	select {
	case m := <-asked:
		if m != "Your name?" {
			t.Errorf("the client was asked %q", m)
		}
	default:
		t.Error("the client was never asked")
	}
}
