package test

// Issue 10, in-band approval on 2026-07-28: a call an approve rule holds
// with via: [elicitation], from a client that declares elicitation in its
// request's _meta, is answered by agentg with an InputRequiredResult; the
// client's retry with an accepting inputResponses runs the call, anything
// else refuses it. The client side is the Go SDK's own multi round-trip
// loop (it runs the ElicitationHandler for inputRequests and retries),
// or a raw client where a test must alter what the SDK would send.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

const mrtrPolicy = mcpBase + `    - approve: "srv.wipe_cache"
      id: ask-user
      via: [elicitation]
      timeout: 60s
`

// With the SDK client: accept runs the call once and the real result
// arrives; decline (or an accept that does not allow) refuses it, and the
// server never ran; neither agentg's question nor the user's answer ever
// reaches the server.
func TestApprovalInputRequiredSDK(t *testing.T) {
	const mode = testenv.MCPStateless
	e := startApprovalEnv(t, mrtrPolicy, nil, mode)
	srv := e.servers[mode]
	for _, tc := range []struct {
		name   string
		answer *mcp.ElicitResult
		ok     bool
	}{
		{"accept", &mcp.ElicitResult{Action: "accept", Content: map[string]any{"allow": true}}, true},
		{"accept-not-allowed", &mcp.ElicitResult{Action: "accept", Content: map[string]any{"allow": false}}, false},
		{"decline", &mcp.ElicitResult{Action: "decline"}, false},
		{"cancel", &mcp.ElicitResult{Action: "cancel"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Value
			var times atomic.Int32
			opts := &mcp.ClientOptions{ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				asked.Store(req.Params.Message)
				times.Add(1)
				return tc.answer, nil
			}}
			cl := e.connect(t, mcpCase{mode, "2026-07-28"}, opts)
			before := srv.Calls(testenv.MCPToolWipe)
			args := map[string]any{"cache": "all-" + tc.name}
			res, err := callTool(t, cl, testenv.MCPToolWipe, args)
			msg, _ := asked.Load().(string)
			if !strings.Contains(msg, "srv.wipe_cache") || !strings.Contains(msg, "all-"+tc.name) {
				t.Fatalf("the user was asked %q, want the tool and its arguments", msg)
			}
			if n := times.Load(); n != 1 {
				t.Fatalf("the user was asked %d times", n)
			}
			ran := srv.Calls(testenv.MCPToolWipe) - before
			if tc.ok {
				wantEcho(t, res, err, args)
				if ran != 1 {
					t.Fatalf("accepted: the server ran %d times", ran)
				}
			} else if err == nil || !strings.Contains(err.Error(), "ask-user") || ran != 0 {
				t.Fatalf("%s: %v %v, server ran %d times", tc.name, res, err, ran)
			}
			for _, r := range srv.Requests() {
				if strings.Contains(string(r.Body), "agentg-approval") {
					t.Fatalf("the server received agentg's input: %s", r.Body)
				}
			}
			id := approvalOf(t, msg)
			action := "denied"
			if tc.ok {
				action = "approved"
			}
			if ev := waitApprovalEvent(t, e.Agentg, id, action); ev["approval_by"] != "elicitation" {
				t.Fatalf("approval event: %v", ev)
			}
		})
	}
}

// approvalOf takes the approval id out of agentg's question.
func approvalOf(t *testing.T, msg string) string {
	t.Helper()
	_, rest, ok := strings.Cut(msg, "agentg approval ")
	id, _, _ := strings.Cut(rest, ",")
	if !ok || !strings.HasPrefix(id, "ap-") {
		t.Fatalf("no approval id in %q", msg)
	}
	return id
}

// inputRequired is what the raw client reads of agentg's answer.
type inputRequired struct {
	Result struct {
		ResultType    string                     `json:"resultType"`
		InputRequests map[string]json.RawMessage `json:"inputRequests"`
		RequestState  string                     `json:"requestState"`
		IsError       bool                       `json:"isError"`
		Content       []struct{ Text string }    `json:"content"`
	} `json:"result"`
	Error *struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	} `json:"error"`
}

// With a raw client, for what the SDK would never send: a requestState
// altered by one character is refused (and the untouched one still
// works, once: a replay of the accepted retry runs nothing); a retry with
// other arguments is asked anew, never approved by the first answer.
// mrtrRaw is a raw 2026-07-28 client of the stateless server through
// agentg that declares form elicitation on every call.
type mrtrRaw struct {
	e   *approvalEnv
	raw *testenv.MCPRaw
}

func newMRTRRaw(t *testing.T, e *approvalEnv) *mrtrRaw {
	t.Helper()
	raw := testenv.NewMCPRaw(testenv.MCPHTTPClient(e.via), testenv.MCPStateless, e.servers[testenv.MCPStateless].URL, "2026-07-28")
	t.Cleanup(raw.Close)
	if err := raw.Open(mcpCtx(t)); err != nil {
		t.Fatal(err)
	}
	return &mrtrRaw{e: e, raw: raw}
}

// call calls the wipe tool, with a retry's requestState and inputResponses
// when given.
func (m *mrtrRaw) call(t *testing.T, id string, args map[string]any, state string, responses map[string]any) inputRequired {
	t.Helper()
	caps := map[string]any{"io.modelcontextprotocol/clientCapabilities": map[string]any{"elicitation": map[string]any{"form": map[string]any{}}}}
	params := map[string]any{"name": testenv.MCPToolWipe, "arguments": args, "_meta": caps}
	if state != "" {
		params["requestState"] = state
	}
	if responses != nil {
		params["inputResponses"] = responses
	}
	r, err := m.raw.Call(mcpCtx(t), id, "tools/call", params)
	if err != nil {
		for _, ev := range readLog(t, m.e.LogFile) {
			t.Log(ev)
		}
		t.Fatal(err)
	}
	msg := r.ByID(id)
	var out inputRequired
	if msg == nil || json.Unmarshal(msg, &out) != nil {
		t.Fatalf("answer %d %s", r.Status, r.Body)
	}
	return out
}

// first is a call's first round: agentg's question, its key and the
// requestState to send back.
func (m *mrtrRaw) first(t *testing.T, id string, args map[string]any) (key, state string) {
	t.Helper()
	ir := m.call(t, id, args, "", nil)
	if ir.Result.ResultType != "input_required" || len(ir.Result.InputRequests) != 1 || ir.Result.RequestState == "" {
		t.Fatalf("first call: %+v, want an InputRequiredResult", ir)
	}
	for k, req := range ir.Result.InputRequests {
		if !strings.Contains(string(req), `"elicitation/create"`) || !strings.Contains(string(req), `"form"`) {
			t.Fatalf("input request %s: %s", k, req)
		}
		key = k
	}
	return key, ir.Result.RequestState
}

// accept is the user's yes to the question under key.
func accept(key string) map[string]any {
	return map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"allow": true}}}
}

func TestApprovalInputRequiredRaw(t *testing.T) {
	e := startApprovalEnv(t, mrtrPolicy, nil, testenv.MCPStateless)
	srv := e.servers[testenv.MCPStateless]
	m := newMRTRRaw(t, e)
	call, first := m.call, m.first
	args := map[string]any{"cache": "raw"}
	before := srv.Calls(testenv.MCPToolWipe)

	t.Run("tampered", func(t *testing.T) {
		key, state := first(t, `"t1"`, args)
		b := []byte(state)
		i := len(b) - 5
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		ir := call(t, `"t2"`, args, string(b), accept(key))
		if ir.Error == nil || ir.Error.Code != -32001 || ir.Error.Data["rule"] != "ask-user" || !strings.Contains(ir.Error.Message, "requestState") {
			t.Fatalf("tampered requestState: %+v", ir)
		}
		if n := srv.Calls(testenv.MCPToolWipe) - before; n != 0 {
			t.Fatalf("tampered: the server ran %d times", n)
		}
		// The real one, then its replay.
		if ir := call(t, `"t3"`, args, state, accept(key)); ir.Error != nil || ir.Result.IsError || ir.Result.ResultType == "input_required" {
			t.Fatalf("the untampered retry: %+v", ir)
		}
		if n := srv.Calls(testenv.MCPToolWipe) - before; n != 1 {
			t.Fatalf("accepted: the server ran %d times", n)
		}
		if ir := call(t, `"t4"`, args, state, accept(key)); ir.Error == nil || ir.Error.Code != -32001 {
			t.Fatalf("a replay of the accepted retry: %+v", ir)
		}
		if n := srv.Calls(testenv.MCPToolWipe) - before; n != 1 {
			t.Fatalf("replayed: the server ran %d times", n)
		}
	})

	t.Run("changed-arguments", func(t *testing.T) {
		base := srv.Calls(testenv.MCPToolWipe)
		key, state := first(t, `"c1"`, args)
		other := map[string]any{"cache": "everything"}
		ir := call(t, `"c2"`, other, state, accept(key))
		if ir.Result.ResultType != "input_required" || ir.Result.RequestState == state {
			t.Fatalf("a retry with other arguments: %+v, want a new question", ir)
		}
		newKey := ""
		for k := range ir.Result.InputRequests {
			newKey = k
		}
		if newKey == key || newKey == "" {
			t.Fatalf("asked again under %q, the first question was %q", newKey, key)
		}
		if n := srv.Calls(testenv.MCPToolWipe) - base; n != 0 {
			t.Fatalf("changed arguments: the server ran %d times", n)
		}
		// The new question, answered, runs the call with the new
		// arguments; what the server got has none of agentg's input.
		if ir := call(t, `"c3"`, other, ir.Result.RequestState, accept(newKey)); ir.Error != nil || ir.Result.IsError {
			t.Fatalf("the new question accepted: %+v", ir)
		}
		if n := srv.Calls(testenv.MCPToolWipe) - base; n != 1 {
			t.Fatalf("the server ran %d times", n)
		}
		if got := string(srv.LastArguments(testenv.MCPToolWipe)); !jsonEqual(got, `{"cache":"everything"}`) {
			t.Fatalf("the server ran with %s", got)
		}
		for _, r := range srv.Requests() {
			if strings.Contains(string(r.Body), "agentg-approval") {
				t.Fatalf("the server received agentg's input: %s", r.Body)
			}
		}
	})
}

// A 2026-07-28 call whose _meta declares no elicitation is never asked in
// band: it is held as usual (here until the client gives up).
func TestApprovalInputRequiredNoCapability(t *testing.T) {
	const mode = testenv.MCPStateless
	e := startApprovalEnv(t, mrtrPolicy, nil, mode)
	raw := testenv.NewMCPRaw(testenv.MCPHTTPClient(e.via), mode, e.servers[mode].URL, "2026-07-28")
	t.Cleanup(raw.Close)
	if err := raw.Open(mcpCtx(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() {
		r, err := raw.Call(ctx, `"n1"`, "tools/call", map[string]any{"name": testenv.MCPToolWipe, "arguments": map[string]any{}})
		if err == nil {
			err = fmt.Errorf("answered %d %s", r.Status, r.Body)
		}
		ch <- err
	}()
	a := e.pending(t, 1)[0]
	select {
	case err := <-ch:
		t.Fatalf("a client without elicitation was answered at once: %v", err)
	default:
	}
	cancel()
	<-ch
	waitApprovalEvent(t, e.Agentg, a.ID, "cancelled")
	if n := e.servers[mode].Calls(testenv.MCPToolWipe); n != 0 {
		t.Fatalf("the server ran %d times", n)
	}
}

// A person at the console approves while the user is still answering
// agentg's question in band: the user's accepting retry then runs the
// call (once), rather than failing because the approval was decided
// already; a replay of that retry passes nothing. A console deny in the
// same place refuses the retry.
func TestApprovalInputRequiredConsoleFirst(t *testing.T) {
	policy := mcpBase + `    - approve: "srv.wipe_cache"
      id: ask-user
      via: [console, elicitation]
      timeout: 60s
`
	e := startApprovalEnv(t, policy, nil, testenv.MCPStateless)
	srv := e.servers[testenv.MCPStateless]
	m := newMRTRRaw(t, e)
	ctx := mcpCtx(t)
	before := srv.Calls(testenv.MCPToolWipe)

	key, state := m.first(t, `"k1"`, map[string]any{"cache": "console"})
	a := e.pending(t, 1)[0]
	if _, err := e.client.Approve(ctx, a.ID, admin.ApproveRequest{}); err != nil {
		t.Fatal(err)
	}
	if ir := m.call(t, `"k2"`, map[string]any{"cache": "console"}, state, accept(key)); ir.Error != nil || ir.Result.IsError || ir.Result.ResultType == "input_required" {
		t.Fatalf("the retry after the console approved: %+v", ir)
	}
	if n := srv.Calls(testenv.MCPToolWipe) - before; n != 1 {
		t.Fatalf("the server ran %d times, want 1", n)
	}
	if ir := m.call(t, `"k3"`, map[string]any{"cache": "console"}, state, accept(key)); ir.Error == nil || !strings.Contains(ir.Error.Message, "already passed its call") {
		t.Fatalf("a replay of the retry: %+v", ir)
	}
	waitFor(t, func() bool {
		for _, ev := range readLog(t, e.LogFile) {
			if ev["method"] == "tools/call" && ev["decision"] == "allow" && ev["approval"] == a.ID && ev["approval_by"] == "console" {
				return true
			}
		}
		return false
	}, "the call's event, allowed by the console's approval")

	key, state = m.first(t, `"d1"`, map[string]any{"cache": "denied"})
	a = e.pending(t, 1)[0]
	if _, err := e.client.Deny(ctx, a.ID, "not today"); err != nil {
		t.Fatal(err)
	}
	if ir := m.call(t, `"d2"`, map[string]any{"cache": "denied"}, state, accept(key)); ir.Error == nil || !strings.Contains(ir.Error.Message, "denied by console") {
		t.Fatalf("the retry after the console denied: %+v", ir)
	}
	if n := srv.Calls(testenv.MCPToolWipe) - before; n != 1 {
		t.Fatalf("the server ran %d times, want 1", n)
	}
}
