package test

// Issue 10, approvals: a call an approve rule covers is held (no byte
// upstream) until approved or denied through the admin API or the CLI,
// or its timeout denies it; remembered scopes; a restart denies what was
// pending, with an event; HTTP requests held the same way. Every test
// runs the real binary with Go SDK MCP peers.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/internal/testenv"
)

// approvalPolicy holds srv.echo (and srv.archive, with a short timeout)
// for approval; everything else is mcpBase's.
const approvalPolicy = mcpBase + `    - approve: "srv.echo"
      id: hold-echo
      timeout: 60s
    - approve: "srv.archive"
      id: hold-archive
      timeout: 1s
`

type approvalEnv struct {
	*adminAgentg
	servers map[testenv.MCPMode]*testenv.MCPServer
	via     testenv.MCPClientConfig
	caFile  string
	dir     string
}

func startApprovalEnv(t *testing.T, policy string, args []string, modes ...testenv.MCPMode) *approvalEnv {
	t.Helper()
	dir := t.TempDir()
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	e := &approvalEnv{servers: map[testenv.MCPMode]*testenv.MCPServer{}, caFile: caFile, dir: filepath.Join(dir, "agentg")}
	for _, m := range modes {
		e.servers[m] = startMCPPeer(t, testenv.MCPServerConfig{Mode: m, CA: upCA})
	}
	e.adminAgentg = startAdminAgentg(t, testenv.AgentgConfig{Dir: e.dir, Policy: mcpPolicy(policy),
		Args: append([]string{"--upstream-ca", caFile}, args...)})
	pool, err := e.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	e.via = testenv.MCPClientConfig{Proxy: e.URL(), Roots: pool}
	return e
}

func (e *approvalEnv) connect(t *testing.T, c mcpCase, opts *mcp.ClientOptions) *testenv.MCPClient {
	t.Helper()
	cfg := e.via
	cfg.Revision, cfg.Options = c.rev, opts
	cl, err := testenv.ConnectMCP(mcpCtx(t), c.mode, e.servers[c.mode].URL, cfg)
	if err != nil {
		t.Fatalf("%v through agentg: %v", c, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// pending waits until n approvals are pending and returns them.
func (e *approvalEnv) pending(t *testing.T, n int) []admin.Approval {
	t.Helper()
	var items []admin.Approval
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if items, err = e.client.Approvals(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(items) == n {
			return items
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d approvals pending, want %d: %+v", len(items), n, items)
	return nil
}

type callResult struct {
	res *mcp.CallToolResult
	err error
}

// callAsync calls tool in the background.
func callAsync(cl *testenv.MCPClient, tool string, args map[string]any) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		ch <- callResult{res, err}
	}()
	return ch
}

func awaitCall(t *testing.T, ch <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the held call never ended")
	}
	return callResult{}
}

// waitApprovalEvent waits for approval id's kind "approval" event with
// the given action.
func waitApprovalEvent(t *testing.T, a *testenv.Agentg, id, action string) map[string]any {
	t.Helper()
	return waitEventOf(t, a, fmt.Sprintf("%s for approval %s", action, id), func(ev map[string]any) bool {
		return ev["kind"] == "approval" && ev["approval"] == id && ev["approval_action"] == action
	})
}

// A held call is approved through the API: nothing reached the server
// while it was held, the approver saw the arguments that were sent, and
// the real result arrives; on every Streamable HTTP framing.
func TestApprovalApprovedThroughAPI(t *testing.T) {
	modes := []testenv.MCPMode{testenv.MCPStateful, testenv.MCPStatefulJSON, testenv.MCPStateless, testenv.MCPStatelessJSON, testenv.MCPLegacySSE}
	e := startApprovalEnv(t, approvalPolicy, nil, modes...)
	for _, m := range modes {
		c := mcpCase{m, m.Revisions()[len(m.Revisions())-1]}
		t.Run(c.String(), func(t *testing.T) {
			cl := e.connect(t, c, nil)
			before := e.servers[m].Calls(testenv.MCPToolEcho)
			args := map[string]any{"msg": "merge " + c.String()}
			ch := callAsync(cl, testenv.MCPToolEcho, args)
			items := e.pending(t, 1)
			a := items[0]
			if a.Kind != "mcp" || a.Server != "srv" || a.Tool != testenv.MCPToolEcho || a.Rule != "hold-echo" ||
				a.State != "pending" || len(a.Via) != 1 || a.Via[0] != "console" {
				t.Fatalf("approval as listed: %+v", a)
			}
			var shown map[string]any
			if err := json.Unmarshal([]byte(a.Args), &shown); err != nil || shown["msg"] != args["msg"] {
				t.Fatalf("approver sees args %q (%v), want the call's", a.Args, err)
			}
			if d := a.Expires.Sub(a.Created); d != 60*time.Second {
				t.Errorf("expires %s after created, want the rule's 60s", d)
			}
			// A marker through the same client and agentg to the same
			// server, after the call was held: its answer means the
			// server has read it, and the held call, had agentg let it
			// go, would have reached the server first.
			if _, err := cl.ListTools(mcpCtx(t), nil); err != nil {
				t.Fatalf("tools/list while the call is held: %v", err)
			}
			if n := e.servers[m].Calls(testenv.MCPToolEcho); n != before {
				t.Fatalf("the server ran echo %d times while the call was held", n-before)
			}
			got, err := e.client.Approve(context.Background(), a.ID, admin.ApproveRequest{})
			if err != nil || got.State != "approved" || got.Scope != "call" {
				t.Fatalf("approve: %+v %v", got, err)
			}
			r := awaitCall(t, ch)
			wantEcho(t, r.res, r.err, args)
			if n := e.servers[m].Calls(testenv.MCPToolEcho); n != before+1 {
				t.Fatalf("server ran echo %d times, want once", n-before)
			}
			// Decided once: a second decision is refused.
			if _, err := e.client.Deny(context.Background(), a.ID, ""); err == nil || !strings.Contains(err.Error(), "409") {
				t.Errorf("deny after approve: %v, want 409", err)
			}
			if g, err := e.client.Approval(context.Background(), a.ID); err != nil || g.State != "approved" || g.By != "console" {
				t.Errorf("GET approval after: %+v %v", g, err)
			}
			waitApprovalEvent(t, e.Agentg, a.ID, "held")
			ev := waitApprovalEvent(t, e.Agentg, a.ID, "approved")
			if ev["decision"] != "allow" || ev["approval_by"] != "console" {
				t.Errorf("approved event: %v", ev)
			}
		})
	}
}

// Denied through the CLI: the policy's error arrives, the server never
// ran the tool.
func TestApprovalDeniedThroughCLI(t *testing.T) {
	e := startApprovalEnv(t, approvalPolicy, nil, testenv.MCPStateful)
	cl := e.connect(t, mcpCase{testenv.MCPStateful, "2025-11-25"}, nil)
	ch := callAsync(cl, testenv.MCPToolEcho, map[string]any{"msg": "no"})
	a := e.pending(t, 1)[0]

	// agentg approvals list shows it.
	out, err := exec.Command(agentgBin, "approvals", "list", "--admin", e.AdminAddr, "--data-dir", e.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), a.ID) || !strings.Contains(string(out), "srv.echo") {
		t.Fatalf("agentg approvals list: %v\n%s", err, out)
	}
	out, err = exec.Command(agentgBin, "deny", a.ID, "--reason", "not today", "--admin", e.AdminAddr, "--data-dir", e.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "denied") {
		t.Fatalf("agentg deny: %v\n%s", err, out)
	}
	r := awaitCall(t, ch)
	if r.err == nil || !strings.Contains(r.err.Error(), "hold-echo") || !strings.Contains(r.err.Error(), "not today") {
		t.Fatalf("denied call: %v %v, want the policy's error with the reason", r.res, r.err)
	}
	if n := e.servers[testenv.MCPStateful].Calls(testenv.MCPToolEcho); n != 0 {
		t.Fatalf("the server ran a denied call %d times", n)
	}
	ev := waitApprovalEvent(t, e.Agentg, a.ID, "denied")
	if ev["decision"] != "deny" || ev["reason"] != "not today" {
		t.Errorf("denied event: %v", ev)
	}
	// An unknown id: the CLI fails.
	if out, err := exec.Command(agentgBin, "approve", "ap-nope", "--admin", e.AdminAddr, "--data-dir", e.DataDir).CombinedOutput(); err == nil {
		t.Errorf("approve of an unknown id succeeded: %s", out)
	}
}

// Timed out: denied with the policy's error, nothing sent.
func TestApprovalTimeout(t *testing.T) {
	e := startApprovalEnv(t, approvalPolicy, nil, testenv.MCPStateless)
	cl := e.connect(t, mcpCase{testenv.MCPStateless, "2026-07-28"}, nil)
	start := time.Now()
	res, err := callTool(t, cl, testenv.MCPToolArchive, map[string]any{"p": 1})
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "hold-archive") {
		t.Fatalf("timed out call: %v %v", res, err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("answered after %s, before the 1s timeout", d)
	}
	if n := e.servers[testenv.MCPStateless].Calls(testenv.MCPToolArchive); n != 0 {
		t.Fatalf("the server ran a timed-out call %d times", n)
	}
	if items, _ := e.client.Approvals(context.Background()); len(items) != 0 {
		t.Fatalf("still pending after the timeout: %+v", items)
	}
}

// Remembered: approved for agent + tool + these arguments, a second
// identical call passes at once; other arguments are asked again.
func TestApprovalRememberedScope(t *testing.T) {
	e := startApprovalEnv(t, approvalPolicy, nil, testenv.MCPStateful)
	cl := e.connect(t, mcpCase{testenv.MCPStateful, "2025-11-25"}, nil)
	args := map[string]any{"pr": 7}
	ch := callAsync(cl, testenv.MCPToolEcho, args)
	a := e.pending(t, 1)[0]
	out, err := exec.Command(agentgBin, "approve", a.ID, "--scope", "agent-tool", "--for", "1m", "--admin", e.AdminAddr, "--data-dir", e.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "agent-tool") {
		t.Fatalf("agentg approve --scope agent-tool: %v\n%s", err, out)
	}
	r := awaitCall(t, ch)
	wantEcho(t, r.res, r.err, args)

	res, err := callTool(t, cl, testenv.MCPToolEcho, args) // remembered: no approval
	wantEcho(t, res, err, args)

	other := map[string]any{"pr": 8}
	ch = callAsync(cl, testenv.MCPToolEcho, other)
	b := e.pending(t, 1)[0]
	if b.ID == a.ID || !strings.Contains(b.Args, "8") {
		t.Fatalf("other arguments: %+v", b)
	}
	if _, err := e.client.Deny(context.Background(), b.ID, ""); err != nil {
		t.Fatal(err)
	}
	if r := awaitCall(t, ch); r.err == nil {
		t.Fatal("the call with other arguments passed on the remembered approval")
	}
	if n := e.servers[testenv.MCPStateful].Calls(testenv.MCPToolEcho); n != 2 {
		t.Fatalf("server ran echo %d times, want 2", n)
	}
}

// A restart with a call pending: the call ends with its process, and the
// new run says, with an event, that the approval was denied.
func TestApprovalRestartDeniesPending(t *testing.T) {
	e := startApprovalEnv(t, approvalPolicy, nil, testenv.MCPStateful)
	cl := e.connect(t, mcpCase{testenv.MCPStateful, "2025-11-25"}, nil)
	ch := callAsync(cl, testenv.MCPToolEcho, map[string]any{"msg": "x"})
	a := e.pending(t, 1)[0]
	// The pending id reaches the data directory (written in the
	// background), then agentg dies without a word.
	pending := filepath.Join(e.DataDir, "approvals-pending.json")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(pending)
		if err == nil && strings.Contains(string(b), a.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending approval is not in the data directory: %v %s", err, b)
		}
	}
	e.Kill()
	if r := awaitCall(t, ch); r.err == nil {
		t.Fatal("the held call succeeded while agentg was killed")
	}
	b := startAdminAgentg(t, testenv.AgentgConfig{Dir: e.dir, Policy: mcpPolicy(approvalPolicy), Args: []string{"--upstream-ca", e.caFile}})
	ev := waitApprovalEvent(t, b.Agentg, a.ID, "denied")
	if ev["approval_by"] != "restart" || ev["decision"] != "deny" || ev["tool"] != "echo" {
		t.Fatalf("restart event: %v", ev)
	}
	if items, _ := b.client.Approvals(context.Background()); len(items) != 0 {
		t.Fatalf("pending after restart: %+v", items)
	}
	if n := e.servers[testenv.MCPStateful].Calls(testenv.MCPToolEcho); n != 0 {
		t.Fatalf("the server ran the call %d times", n)
	}
}

// While a call is held on an event stream, the stream is kept alive with
// comment lines; the pending gauge counts it.
func TestApprovalKeepAliveAndGauge(t *testing.T) {
	e := startApprovalEnv(t, approvalPolicy, []string{"--approval-keepalive", "100ms"}, testenv.MCPStateful)
	c := mcpCase{testenv.MCPStateful, "2025-11-25"}
	raw := testenv.NewMCPRaw(testenv.MCPHTTPClient(e.via), c.mode, e.servers[c.mode].URL, c.rev)
	t.Cleanup(raw.Close)
	if err := raw.Open(mcpCtx(t)); err != nil {
		t.Fatal(err)
	}
	body := raw.Request("9", "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"k": "v"}})
	req, _ := http.NewRequestWithContext(mcpCtx(t), http.MethodPost, e.servers[c.mode].URL, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", c.rev)
	req.Header.Set("Mcp-Session-Id", raw.Session)
	resp, err := testenv.MCPHTTPClient(e.via).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("held answer's Content-Type %q, want an event stream", ct)
	}
	br := bufio.NewReader(resp.Body)
	comments := 0
	for comments < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the held stream: %v", err)
		}
		if strings.HasPrefix(line, ": agentg: held for approval ap-") {
			comments++
		}
	}
	waitMetricAtLeast(t, e.adminAgentg, "agentg_approvals_pending", nil, 1)
	a := e.pending(t, 1)[0]
	if _, err := e.client.Approve(context.Background(), a.ID, admin.ApproveRequest{}); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `"id":9`) || !strings.Contains(string(rest), `"result"`) {
		t.Fatalf("after approval the stream carried %q, want the server's result for id 9", rest)
	}
	if v := metricValue(metricsOf(t, e.adminAgentg), "agentg_approvals_pending", nil); v != 0 {
		t.Fatalf("approvals_pending %v after the decision", v)
	}
}

// An HTTP request an http approve rule covers is held: the upstream sees
// nothing until it is approved; a denied one never reaches it.
func TestApprovalHTTPRequest(t *testing.T) {
	var hits atomic.Int64
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hits.Add(1)
	})})
	defer up.Close()
	policy := `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: api.test
resolve:
  api.test: [127.0.0.1]
http:
  - approve: "POST api.test/deploy/**"
    id: hold-deploy
`
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: policy})
	proxied := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	_, port, _ := strings.Cut(up.HostPort("127.0.0.1"), ":")
	target := fmt.Sprintf("http://api.test:%s/deploy/web?v=2", port)

	for _, approve := range []bool{true, false} {
		before := hits.Load()
		var wg sync.WaitGroup
		var status int
		var rerr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := proxied.Post(target, "text/plain", strings.NewReader("ship it"))
			if err != nil {
				rerr = err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}()
		var items []admin.Approval
		waitFor(t, func() bool { items, _ = a.client.Approvals(context.Background()); return len(items) == 1 }, "a pending http approval")
		ap := items[0]
		if ap.Kind != "http" || ap.Method != "POST" || ap.URL != target || ap.Rule != "hold-deploy" {
			t.Fatalf("http approval: %+v", ap)
		}
		// A marker request to the same upstream through agentg, after
		// the request was held: once it is answered, the upstream has
		// seen it and nothing else.
		resp, err := proxied.Get(fmt.Sprintf("http://api.test:%s/marker", port))
		if err != nil {
			t.Fatalf("marker request: %v", err)
		}
		resp.Body.Close()
		if n := hits.Load(); n != before+1 {
			t.Fatalf("the upstream saw %d requests while one was held and the marker passed, want the marker's only", n-before)
		}
		before++
		if approve {
			_, err = a.client.Approve(context.Background(), ap.ID, admin.ApproveRequest{})
		} else {
			_, err = a.client.Deny(context.Background(), ap.ID, "")
		}
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		switch {
		case rerr != nil:
			t.Fatal(rerr)
		case approve && (status != 200 || hits.Load() != before+1):
			t.Fatalf("approved: %d, upstream requests %d", status, hits.Load()-before)
		case !approve && (status != 403 || hits.Load() != before):
			t.Fatalf("denied: %d, upstream requests %d", status, hits.Load()-before)
		}
	}
}

// The webhook: a loopback receiver gets each pending approval, signed;
// the documented verifier accepts it and refuses it tampered; a receiver
// that fails is retried, and its failure approves nothing.
func TestApprovalWebhook(t *testing.T) {
	secret := "webhook-secret-0123456789"
	type delivery struct {
		h    http.Header
		body []byte
	}
	got := make(chan delivery, 16)
	var fails atomic.Int64
	fails.Store(1) // the first delivery fails: it must be retried
	recv := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if fails.Add(-1) >= 0 {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		got <- delivery{r.Header.Clone(), b}
	})})
	defer recv.Close()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startApprovalEnv(t, approvalPolicy, []string{"--approvals-webhook", "http://" + recv.HostPort("127.0.0.1") + "/hook",
		"--approvals-webhook-secret-file", secretFile}, testenv.MCPStateful)
	cl := e.connect(t, mcpCase{testenv.MCPStateful, "2025-11-25"}, nil)
	ch := callAsync(cl, testenv.MCPToolEcho, map[string]any{"msg": "hooked"})
	a := e.pending(t, 1)[0]
	var d delivery
	select {
	case d = <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook delivery")
	}
	if err := approval.VerifyWebhook([]byte(secret), d.h, d.body, time.Now(), 0); err != nil {
		t.Fatalf("a genuine notification refused: %v\n%s", err, d.body)
	}
	var n struct {
		Type     string         `json:"type"`
		Approval admin.Approval `json:"approval"`
	}
	if err := json.Unmarshal(d.body, &n); err != nil || n.Type != "approval.pending" || n.Approval.ID != a.ID ||
		n.Approval.Tool != "echo" || !strings.Contains(n.Approval.Args, "hooked") {
		t.Fatalf("notification %s (%v)", d.body, err)
	}
	tampered := []byte(strings.Replace(string(d.body), "hooked", "hacked", 1))
	if err := approval.VerifyWebhook([]byte(secret), d.h, tampered, time.Now(), 0); err == nil {
		t.Fatal("a tampered notification verified")
	}
	// Nothing was approved by the notification, or by its failure.
	if items := e.pending(t, 1); items[0].State != "pending" {
		t.Fatalf("after the webhook: %+v", items[0])
	}
	if _, err := e.client.Approve(context.Background(), a.ID, admin.ApproveRequest{}); err != nil {
		t.Fatal(err)
	}
	r := awaitCall(t, ch)
	wantEcho(t, r.res, r.err, map[string]any{"msg": "hooked"})
}

// In-band approval: on a stateful 2025-06-18 or 2025-11-25 session whose
// client declared elicitation, agentg asks the client's user on the held
// call's stream; accept runs the call, decline refuses it; the answer
// never reaches the server.
func TestApprovalElicitationStateful(t *testing.T) {
	policy := mcpBase + `    - approve: "srv.wipe_cache"
      id: ask-user
      via: [elicitation]
`
	e := startApprovalEnv(t, policy, nil, testenv.MCPStateful)
	for _, rev := range []string{"2025-06-18", "2025-11-25"} {
		for _, answer := range []string{"accept", "decline"} {
			t.Run(rev+"/"+answer, func(t *testing.T) {
				var asked atomic.Value
				opts := &mcp.ClientOptions{ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					asked.Store(req.Params.Message)
					return &mcp.ElicitResult{Action: answer}, nil
				}}
				cl := e.connect(t, mcpCase{testenv.MCPStateful, rev}, opts)
				before := e.servers[testenv.MCPStateful].Calls(testenv.MCPToolWipe)
				args := map[string]any{"cache": "all-" + answer}
				res, err := callTool(t, cl, testenv.MCPToolWipe, args)
				msg, _ := asked.Load().(string)
				if !strings.Contains(msg, "srv.wipe_cache") || !strings.Contains(msg, "all-"+answer) {
					t.Fatalf("the user was asked %q, want the tool and its arguments", msg)
				}
				ran := e.servers[testenv.MCPStateful].Calls(testenv.MCPToolWipe) - before
				if answer == "accept" {
					wantEcho(t, res, err, args)
					if ran != 1 {
						t.Fatalf("accepted: the server ran %d times", ran)
					}
				} else if err == nil || !strings.Contains(err.Error(), "ask-user") || ran != 0 {
					t.Fatalf("declined: %v %v, server ran %d times", res, err, ran)
				}
				// The client's answer went to agentg, not the server.
				for _, r := range e.servers[testenv.MCPStateful].Requests() {
					if strings.Contains(string(r.Body), "agentg-approval-") {
						t.Fatalf("the server received the elicitation answer: %s", r.Body)
					}
				}
			})
		}
	}
	// A client without the capability is never asked: the console-less
	// rule holds until its timeout (here: the client gives up).
	cl := e.connect(t, mcpCase{testenv.MCPStateful, "2025-11-25"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() {
		_, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolWipe, Arguments: map[string]any{}})
		ch <- err
	}()
	a := e.pending(t, 1)[0]
	if _, err := e.client.Approve(context.Background(), a.ID, admin.ApproveRequest{}); err == nil {
		t.Fatal("the console approved an elicitation-only hold")
	}
	// Another session answering the elicitation agentg would have sent
	// approves nothing, and its answer does not reach the server.
	other := testenv.NewMCPRaw(testenv.MCPHTTPClient(e.via), testenv.MCPStateful, e.servers[testenv.MCPStateful].URL, "2025-11-25")
	t.Cleanup(other.Close)
	if err := other.Open(mcpCtx(t)); err != nil {
		t.Fatal(err)
	}
	forged := `{"jsonrpc":"2.0","id":"agentg-approval-` + a.ID + `","result":{"action":"accept"}}`
	if _, err := other.Post(mcpCtx(t), testenv.MCPPost{Body: []byte(forged)}); err != nil {
		t.Fatal(err)
	}
	if g, _ := e.client.Approval(context.Background(), a.ID); g.State != "pending" {
		t.Fatalf("a forged in-band answer from another session decided the approval: %+v", g)
	}
	cancel() // the client gives up: the hold ends, cancelled (a denial)
	<-ch
	ev := waitApprovalEvent(t, e.Agentg, a.ID, "cancelled")
	if ev["approval_by"] != "client" {
		t.Fatalf("client gone: %v", ev)
	}
	if n := e.servers[testenv.MCPStateful].Calls(testenv.MCPToolWipe); n != 2 {
		t.Fatalf("the server ran wipe_cache %d times, want the 2 accepted", n)
	}
}
