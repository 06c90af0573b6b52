package test

// The environment of the MCP tests (issue 7): official Go SDK servers
// (internal/testenv) behind an in-process agentg that intercepts
// mcp.test, SDK and raw clients through it, and readers for the MCP events
// agentg logs. The tests in mcp_*_test.go define the behaviour the
// dissector (dissect/mcp, rules' mcp: section, state) must have; the peers
// themselves are checked without agentg by TestMCPPeersDirect.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// mcpPolicy is a policy that lets loopback MCP servers on mcp.test and
// other.test be reached and intercepted, with mcpSection (an "mcp:" key)
// after it.
func mcpPolicy(mcpSection string) string {
	return `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [mcp.test, other.test]
resolve:
  mcp.test: [127.0.0.1]
  other.test: [127.0.0.1]
intercept: [mcp.test, other.test]
` + mcpSection
}

// mcpBase is the mcp: section most tests run under, in the issue's
// syntax. Server srv is mcp.test; server peer is bound to other.test,
// and "peer" is also the serverInfo.name every test server claims: a
// dissector that took the server's name from serverInfo would deny every
// call on mcp.test by no-peer.
const mcpBase = `
mcp:
  default: allow
  unknown_servers: allow
  deny_as: error
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
    - name: peer
      url: "other.test/mcp/**"
  tools:
    - deny: "srv.delete_*"
      id: no-delete
    - deny: "peer.*"
      id: no-peer
`

// mcpCase is one client/server pairing: a protocol revision over the
// transport and response framing of a mode.
type mcpCase struct {
	mode testenv.MCPMode
	rev  string
}

func (c mcpCase) String() string { return c.rev + "/" + c.mode.String() }

// mcpCases is every revision over every mode that carries it: 2024-11-05
// over HTTP+SSE; 2025-03-26, 2025-06-18 and 2025-11-25 over stateful
// Streamable HTTP with SSE and with JSON answers; 2026-07-28 stateless with
// both.
func mcpCases() []mcpCase {
	var out []mcpCase
	for _, m := range testenv.MCPModes {
		for _, rev := range m.Revisions() {
			out = append(out, mcpCase{m, rev})
		}
	}
	return out
}

// mcpEnv is agentg (in process) with one MCP server per mode, all on
// mcp.test, each on its own port, with certificates from upCA (which
// agentg trusts for upstreams).
type mcpEnv struct {
	*env
	upCA  *testenv.CA
	peers map[testenv.MCPMode]*testenv.MCPServer
}

// newMCPEnv starts agentg under policy and a server for each of modes
// (all when none are given), configured like cfg.
func newMCPEnv(t *testing.T, policy string, cfg testenv.MCPServerConfig, modes ...testenv.MCPMode) *mcpEnv {
	t.Helper()
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	if len(modes) == 0 {
		modes = testenv.MCPModes
	}
	e := &mcpEnv{upCA: upCA, peers: map[testenv.MCPMode]*testenv.MCPServer{}}
	for _, m := range modes {
		c := cfg
		c.Mode, c.CA = m, upCA
		e.peers[m] = startMCPPeer(t, c)
	}
	e.env = startProxyWith(t, policy, nil, &tlsOpts{roots: upCA.Pool()})
	return e
}

func startMCPPeer(t *testing.T, cfg testenv.MCPServerConfig) *testenv.MCPServer {
	t.Helper()
	s, err := testenv.StartMCPServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// mcpCtx bounds one test's MCP traffic.
func mcpCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// via is how a client reaches servers through agentg, as user (anonymous
// when empty).
func (e *mcpEnv) via(user, pass string) testenv.MCPClientConfig {
	cfg := testenv.MCPClientConfig{Proxy: e.proxyURL(user, pass)}
	if e.ca != nil { // a proxy without a CA serves plain http:// only
		cfg.Roots = e.caPool()
	}
	return cfg
}

// connect is an SDK client of c's server through agentg, pinned to c's
// revision.
func (e *mcpEnv) connect(t *testing.T, c mcpCase, opts *mcp.ClientOptions) *testenv.MCPClient {
	t.Helper()
	return e.connectWith(t, c, e.via("", ""), opts)
}

func (e *mcpEnv) connectWith(t *testing.T, c mcpCase, cfg testenv.MCPClientConfig, opts *mcp.ClientOptions) *testenv.MCPClient {
	t.Helper()
	cfg.Revision, cfg.Options = c.rev, opts
	cl, err := testenv.ConnectMCP(mcpCtx(t), c.mode, e.peers[c.mode].URL, cfg)
	if err != nil {
		t.Fatalf("%v through agentg: %v", c, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// raw is a raw client of c's server through agentg, its handshake done.
func (e *mcpEnv) raw(t *testing.T, c mcpCase) *testenv.MCPRaw {
	t.Helper()
	return e.rawAt(t, c, e.peers[c.mode].URL)
}

func (e *mcpEnv) rawAt(t *testing.T, c mcpCase, endpoint string) *testenv.MCPRaw {
	t.Helper()
	r := testenv.NewMCPRaw(testenv.MCPHTTPClient(e.via("", "")), c.mode, endpoint, c.rev)
	t.Cleanup(r.Close)
	if err := r.Open(mcpCtx(t)); err != nil {
		t.Fatalf("%v raw handshake through agentg: %v", c, err)
	}
	return r
}

// callTool calls tool with args; the result and error are the SDK's.
func callTool(t *testing.T, cl *testenv.MCPClient, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	return cl.CallTool(mcpCtx(t), &mcp.CallToolParams{Name: tool, Arguments: args})
}

// resultText is the text of a result's content items, joined by "|".
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "|")
}

// wantEcho fails unless res is echo's answer to args (the server ran).
func wantEcho(t *testing.T, res *mcp.CallToolResult, err error, args map[string]any) {
	t.Helper()
	if err != nil {
		t.Fatalf("allowed call failed: %v", err)
	}
	want, _ := json.Marshal(args)
	if res.IsError || !jsonEqual(resultText(res), string(want)) {
		t.Fatalf("allowed call: isError=%v text %q, want the echo of %s", res.IsError, resultText(res), want)
	}
}

// wantDenied fails unless err is agentg's refusal of a tool call: a
// JSON-RPC error with code -32001 whose data names rule.
func wantDenied(t *testing.T, res *mcp.CallToolResult, err error, rule string) {
	t.Helper()
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) {
		if res != nil {
			t.Fatalf("denied call got a result (isError=%v %q), want a JSON-RPC error -32001 naming %s", res.IsError, resultText(res), rule)
		}
		t.Fatalf("denied call: %v, want a JSON-RPC error -32001 naming %s", err, rule)
	}
	if werr.Code != -32001 || dataRule(werr.Data) != rule || werr.Message == "" {
		t.Fatalf("denied call: error code %d message %q data %s, want code -32001, a message, data.rule %q", werr.Code, werr.Message, werr.Data, rule)
	}
}

func dataRule(data json.RawMessage) string {
	var d struct {
		Rule string `json:"rule"`
	}
	json.Unmarshal(data, &d)
	return d.Rule
}

// rpcMsg is one JSON-RPC message as a raw client sees it.
type rpcMsg struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeRPC(t *testing.T, m json.RawMessage) rpcMsg {
	t.Helper()
	var r rpcMsg
	if err := json.Unmarshal(m, &r); err != nil {
		t.Fatalf("not a JSON-RPC message: %q: %v", m, err)
	}
	return r
}

// wantRawDenied fails unless m is the -32001 error naming rule for id.
func wantRawDenied(t *testing.T, m json.RawMessage, id, rule string) {
	t.Helper()
	if m == nil {
		t.Fatalf("no answer for id %s", id)
	}
	r := decodeRPC(t, m)
	if got := testenv.MCPMessageID(m); got != id {
		t.Errorf("answer has id %s, want %s (the JSON type kept): %s", got, id, m)
	}
	if r.Error == nil || r.Error.Code != -32001 || dataRule(r.Error.Data) != rule {
		t.Fatalf("answer for id %s is %s, want error -32001 with data.rule %q", id, m, rule)
	}
}

// wantRawResult fails unless m is a result (no error) for id, and returns
// the text of its content.
func wantRawResult(t *testing.T, m json.RawMessage, id string) string {
	t.Helper()
	if m == nil {
		t.Fatalf("no answer for id %s", id)
	}
	r := decodeRPC(t, m)
	if got := testenv.MCPMessageID(m); got != id {
		t.Errorf("answer has id %s, want %s: %s", got, id, m)
	}
	if r.Error != nil || r.Result == nil {
		t.Fatalf("answer for id %s is %s, want a result", id, m)
	}
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	json.Unmarshal(r.Result, &res)
	var parts []string
	for _, c := range res.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "|")
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// allLines are every JSON line agentg logged, whatever its message: MCP
// events need not share the HTTP events' message.
func (e *env) allLines() []event {
	var out []event
	for _, line := range strings.Split(e.log.String(), "\n") {
		var ev event
		if json.Unmarshal([]byte(line), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

// mcpEvents are the events of kind mcp.
func (e *env) mcpEvents() []event {
	var out []event
	for _, ev := range e.allLines() {
		if ev.str("kind") == "mcp" {
			out = append(out, ev)
		}
	}
	return out
}

// waitMCPEvent waits for an event of kind mcp matching all of want.
func waitMCPEvent(t *testing.T, e *env, want map[string]any) event {
	t.Helper()
	return waitMCPEventWhere(t, e, fmt.Sprintf("matching %v", want), func(ev event) bool { return matches(ev, want) })
}

func waitMCPEventWhere(t *testing.T, e *env, what string, ok func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.mcpEvents() {
			if ok(ev) {
				return ev
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no MCP event %s in log:\n%s", what, e.log.String())
	return nil
}

// wantLinked fails unless ev's parent is the id of an HTTP exchange event
// for an MCP endpoint path, and the two agree on the agent.
func wantLinked(t *testing.T, e *env, ev event) event {
	t.Helper()
	parent := ev.str("parent")
	if parent == "" || ev.str("id") == "" {
		t.Fatalf("MCP event without id or parent: %v", ev)
	}
	var found event
	waitFor(t, func() bool {
		for _, x := range e.allLines() {
			if x.str("id") == parent {
				found = x
				return true
			}
		}
		return false
	}, "the exchange event "+parent+" an MCP event names as its parent")
	if found.str("kind") != "http" || !strings.HasPrefix(found.str("path"), "/mcp") {
		t.Fatalf("MCP event's parent is %v, want the HTTP exchange event of an /mcp request", found)
	}
	if found.str("agent") != ev.str("agent") {
		t.Errorf("MCP event agent %q, its exchange's %q", ev.str("agent"), found.str("agent"))
	}
	return found
}

// waitLineWhere waits for a logged line (any message) for which ok holds.
func waitLineWhere(t *testing.T, e *env, what string, ok func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.allLines() {
			if ok(ev) {
				return ev
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no event %s in log:\n%s", what, e.log.String())
	return nil
}

// mcpNoRequest fails if server received any request for path: agentg
// refused it before a byte went upstream. The evidence is positive, not a
// pause: once agentg has answered the refused request, r sends a marker
// (a ping, to path + "-marker") through agentg to the same server, and
// the server has recorded the marker when r has its answer. A refused
// request agentg had forwarded was sent upstream before agentg answered,
// so before the marker was even written.
func mcpNoRequest(t *testing.T, r *testenv.MCPRaw, s *testenv.MCPServer, path string) {
	t.Helper()
	marker := path + "-marker"
	before := len(s.RequestsTo(marker))
	reply, err := r.Post(mcpCtx(t), testenv.MCPPost{Path: marker, Body: r.Request(`"marker"`, "ping", nil), Header: r.Headers("ping", "")})
	if err != nil {
		t.Fatalf("the marker request after refusing %s: %v", path, err)
	}
	if len(s.RequestsTo(marker)) != before+1 {
		t.Fatalf("the marker request after refusing %s never reached the server (answered %d %q): no evidence that the refused one did not", path, reply.Status, reply.Body)
	}
	if got := s.RequestsTo(path); len(got) != 0 {
		t.Fatalf("the server received %d request(s) for %s that agentg should have refused: first %s %q",
			len(got), path, got[0].Method, got[0].Body)
	}
}
