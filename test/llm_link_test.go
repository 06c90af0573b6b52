package test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/openai/openai-go/v3"
	oopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// Issue 18, reasoning context: a model turn (read by agentg on its way
// from a loopback provider to the provider's own SDK) asks for a tool; the
// agent then calls it through agentg (the proxy door, the gateway door) on
// a Go SDK MCP server. The tools/call event names the turn and carries its
// text and reasoning, redacted; a call no turn asked for is unrequested,
// and mcp.unrequested: deny keeps it from running. On the way to the
// provider, redact rules rewrite the conversation and the leak guard
// refuses a held value, in the provider's error shape.

// linkModel is a model provider on loopback, answering every call with
// the answer a test set, and keeping every request body it received
// after decoding it with the provider SDK's own request type (an error
// is kept too: agentg must forward what the provider can read).
type linkModel struct {
	mu     sync.Mutex
	answer string // the Anthropic or OpenAI answer, by the path asked
	// linger keeps a streamed answer open this long after its last
	// event, as a provider may before it ends the body: the agent has
	// read the whole turn before agentg has.
	linger  time.Duration
	bodies  []string
	decoded []error
}

func (m *linkModel) set(answer string) {
	m.mu.Lock()
	m.answer = answer
	m.mu.Unlock()
}

func (m *linkModel) received() (bodies []string, errs []error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.bodies...), append([]error(nil), m.decoded...)
}

func (m *linkModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var err error
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, "/v1/messages"):
		var q anthropic.MessageNewParams
		err = json.Unmarshal(body, &q)
	case strings.HasSuffix(p, "/chat/completions"):
		var q openai.ChatCompletionNewParams
		err = json.Unmarshal(body, &q)
	case strings.HasSuffix(p, "/responses"):
		var q responses.ResponseNewParams
		err = json.Unmarshal(body, &q)
	case strings.Contains(p, ":generateContent"):
		var q struct {
			Contents          []*genai.Content `json:"contents"`
			SystemInstruction *genai.Content   `json:"systemInstruction"`
		}
		err = json.Unmarshal(body, &q)
	}
	m.mu.Lock()
	m.bodies = append(m.bodies, string(body))
	m.decoded = append(m.decoded, err)
	answer, linger := m.answer, m.linger
	m.mu.Unlock()
	if strings.HasPrefix(answer, "data: ") {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, answer)
		w.(http.Flusher).Flush()
		time.Sleep(linger)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"unreadable"}}`)
		return
	}
	io.WriteString(w, answer)
}

// anthropicToolUse is an Anthropic answer whose turn thinks, says
// something, and asks for tool (by the name the model sees) with input.
func anthropicToolUse(thinking, text, tool, input string) string {
	return `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[` +
		`{"type":"thinking","thinking":` + jsonString(thinking) + `,"signature":"c2ln"},` +
		`{"type":"text","text":` + jsonString(text) + `},` +
		`{"type":"tool_use","id":"toolu_01","name":` + jsonString(tool) + `,"input":` + input + `}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":34}}`
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// linkEnv is agentg with a model provider and an MCP server behind it.
type linkEnv struct {
	a     *testenv.Agentg
	model *linkModel
	port  string // the model provider's
	mcp   *testenv.MCPServer
	pool  *tls.Config
}

const linkSecret = "ghp-link-SECRET-5c1e9a7b3d"

// linkPolicy: srv is the MCP server (mcp.test through the proxy; its
// endpoint for the gateway), the providers' hosts are on loopback, and a
// redact rule and a held secret (bound to another host) are in force.
func linkPolicy(mcpAddr, extraMCP string) string {
	return linkPolicyUnparsed(mcpAddr, extraMCP, "deny")
}

func linkPolicyUnparsed(mcpAddr, extraMCP, unparsed string) string {
	return `
default: deny
free_agent_names: true
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [api.anthropic.com, api.openai.com, generativelanguage.googleapis.com, mcp.test, localhost]
resolve:
  api.anthropic.com: [127.0.0.1]
  api.openai.com: [127.0.0.1]
  generativelanguage.googleapis.com: [127.0.0.1]
  mcp.test: [127.0.0.1]
intercept: [mcp.test]
mcp:
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
    - name: gw
      endpoint: http://` + mcpAddr + `/mcp
  redact:
    - pattern: "Disk \\w+"
      id: disk
` + extraMCP + `llm:
  unparsed: ` + unparsed + `
credentials:
  secrets:
    gh: {env: AGENTG_TEST_LINK_SECRET}
  bindings:
    - id: gh-only
      host: api.github.com
      secret: gh
      header: {name: Authorization, value: "Bearer {{secret}}"}
`
}

func startLink(t *testing.T, extraMCP string, args ...string) *linkEnv {
	t.Helper()
	return startLinkPolicy(t, func(mcpAddr string) string { return linkPolicy(mcpAddr, extraMCP) }, args...)
}

func startLinkPolicy(t *testing.T, policy func(mcpAddr string) string, args ...string) *linkEnv {
	t.Helper()
	e := &linkEnv{model: &linkModel{}}
	var err error
	if e.mcp, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.mcp.Close)
	upCA, err := testenv.NewCA("link upstream root")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := upCA.Leaf([]string{"api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: e.model})
	t.Cleanup(srv.Close)
	e.port = srv.Port
	dir := t.TempDir()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	testenv.Secrets(t, linkSecret)
	e.a, err = testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: filepath.Join(dir, "agentg"),
		Policy: policy(e.mcp.Addr),
		Env:    append(os.Environ(), "AGENTG_TEST_LINK_SECRET="+linkSecret),
		Args:   append([]string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.a.Kill)
	pool, err := e.a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	e.pool = &tls.Config{RootCAs: pool}
	return e
}

// httpClient is agent's HTTP client through agentg.
func (e *linkEnv) httpClient(agent string) *http.Client {
	pu := e.a.URL()
	pu.User = url.UserPassword(agent, "x")
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: e.pool}}
}

// turn has agent's model (Anthropic, through agentg) answer with answer,
// and returns the id of the turn's llm event.
func (e *linkEnv) turn(t *testing.T, agent, answer string) string {
	t.Helper()
	e.model.set(answer)
	c := anthropic.NewClient(aopt.WithBaseURL("https://api.anthropic.com:"+e.port), aopt.WithAPIKey("sk-ant-placeholder-key"),
		aopt.WithMaxRetries(0), aopt.WithHTTPClient(e.httpClient(agent)))
	msg, err := c.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("what is the weather?"))}})
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != "tool_use" {
		t.Fatalf("the SDK read stop reason %q", msg.StopReason)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	ev, err := e.a.WaitEvent(ctx, func(m map[string]any) bool {
		return m["kind"] == "llm" && m["agent"] == agent && m["stop_reason"] == "tool_use" && !seenTurn(m)
	})
	if err != nil {
		t.Fatalf("no llm event for %s: %v", agent, err)
	}
	return ev["id"].(string)
}

var turnsSeen sync.Map

// seenTurn marks an llm event as taken by a test step, so that the next
// step waits for its own.
func seenTurn(m map[string]any) bool {
	_, loaded := turnsSeen.LoadOrStore(m["id"], true)
	return loaded
}

// mcpClient is agent's MCP client of srv through the proxy door.
func (e *linkEnv) mcpClient(t *testing.T, agent string) *testenv.MCPClient {
	t.Helper()
	pu := e.a.URL()
	pu.User = url.UserPassword(agent, "x")
	cl, err := testenv.ConnectMCP(mcpCtx(t), testenv.MCPStateful, "http://mcp.test:"+e.mcp.Port+"/mcp",
		testenv.MCPClientConfig{Proxy: pu, Revision: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// callEvent waits for the tools/call event of agent's whose arguments hold
// marker.
func (e *linkEnv) callEvent(t *testing.T, agent, marker string) map[string]any {
	t.Helper()
	return e.callEvents(t, agent, marker, 1)[0]
}

// callEvents waits for n such events, in the order they were logged.
func (e *linkEnv) callEvents(t *testing.T, agent, marker string, n int) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	evs, err := e.a.WaitEvents(ctx, n, func(m map[string]any) bool {
		args, _ := m["args"].(string)
		return m["kind"] == "mcp" && m["method"] == "tools/call" && m["agent"] == agent && strings.Contains(args, marker)
	})
	if err != nil {
		t.Fatalf("not %d tools/call events of %s with %q: %v", n, agent, marker, err)
	}
	return evs
}

func TestLLMLinkProxyDoor(t *testing.T) {
	e := startLink(t, "")
	const agent = "linker"
	// The model writes its arguments in another order and spelling than
	// the agent's MCP client will: canonical JSON matches them.
	turnID := e.turn(t, agent, anthropicToolUse("The user wants Oslo. Disk Q9 has the cache.", "I will echo Oslo for you. Disk C7 is full.",
		"mcp__srv__echo", `{ "n" : 1.0, "city" : "Oslo" }`))
	cl := e.mcpClient(t, agent)

	res, err := callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": "Oslo", "n": 1})
	wantEcho(t, res, err, map[string]any{"city": "Oslo", "n": 1})
	ev := e.callEvent(t, agent, "Oslo")
	if ev["llm_turn"] != turnID || ev["unrequested"] != nil || ev["decision"] != "allow" {
		t.Fatalf("the call's event: llm_turn %v (want %s), unrequested %v, decision %v", ev["llm_turn"], turnID, ev["unrequested"], ev["decision"])
	}
	text, _ := ev["turn_text"].(string)
	reasoning, _ := ev["turn_reasoning"].(string)
	if !strings.Contains(text, "I will echo Oslo for you. [REDACTED:disk] is full.") || strings.Contains(text, "C7") {
		t.Errorf("turn_text %q, want the turn's text redacted", text)
	}
	if !strings.Contains(reasoning, "The user wants Oslo. [REDACTED:disk] has the cache.") || strings.Contains(reasoning, "Q9") {
		t.Errorf("turn_reasoning %q, want the turn's reasoning redacted", reasoning)
	}

	// The same call again: the turn's tool call was claimed once.
	res, err = callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": "Oslo", "n": 1})
	wantEcho(t, res, err, map[string]any{"city": "Oslo", "n": 1})
	if ev := e.callEvents(t, agent, "Oslo", 2)[1]; ev["unrequested"] != true || ev["llm_turn"] != nil || ev["decision"] != "allow" {
		t.Errorf("the same call a second time: unrequested %v, llm_turn %v, decision %v; want it marked, and run (report)", ev["unrequested"], ev["llm_turn"], ev["decision"])
	}
	// A turn asks for Bergen; the agent calls with other arguments.
	e.turn(t, agent, anthropicToolUse("", "Bergen it is.", "srv_echo", `{"city":"Bergen"}`))
	res, err = callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": "Trondheim"})
	wantEcho(t, res, err, map[string]any{"city": "Trondheim"})
	if ev := e.callEvent(t, agent, "Trondheim"); ev["unrequested"] != true || ev["llm_turn"] != nil {
		t.Errorf("a call with other arguments than the turn's: unrequested %v, llm_turn %v", ev["unrequested"], ev["llm_turn"])
	}
	// ...and the call it asked for, by the SERVER_TOOL convention.
	res, err = callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": "Bergen"})
	wantEcho(t, res, err, map[string]any{"city": "Bergen"})
	if ev := e.callEvent(t, agent, "Bergen"); ev["llm_turn"] == nil || ev["unrequested"] != nil || ev["turn_text"] != "Bergen it is." {
		t.Errorf("the call the second turn asked for: %v", ev)
	}

	// An agent whose model path agentg never saw: nothing to tie, nothing
	// marked.
	other := e.mcpClient(t, "no-model")
	res, err = callTool(t, other, testenv.MCPToolEcho, map[string]any{"city": "Stavanger"})
	wantEcho(t, res, err, map[string]any{"city": "Stavanger"})
	if ev := e.callEvent(t, "no-model", "Stavanger"); ev["unrequested"] != nil || ev["llm_turn"] != nil {
		t.Errorf("an agent without model turns: unrequested %v llm_turn %v", ev["unrequested"], ev["llm_turn"])
	}
}

func TestLLMLinkUnrequestedDeny(t *testing.T) {
	e := startLink(t, "  unrequested: deny\n")
	const agent = "denied-agent"
	e.turn(t, agent, anthropicToolUse("", "Echoing Oslo.", "mcp__srv__echo", `{"city":"Oslo"}`))
	cl := e.mcpClient(t, agent)

	// Bergen: no turn asked for it. Refused, never run.
	res, err := callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": "Bergen"})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != -32001 || dataRule(werr.Data) != "mcp:unrequested" {
		t.Fatalf("an unrequested call under unrequested: deny: %v %+v, want a JSON-RPC error naming mcp:unrequested", err, res)
	}
	ev := e.callEvent(t, agent, "Bergen")
	if ev["unrequested"] != true || ev["decision"] != "deny" || ev["rule"] != "mcp:unrequested" || !strings.Contains(ev["reason"].(string), "no model turn asked") {
		t.Errorf("the refusal's event: %v", ev)
	}
	// Oslo, which the turn asked for, runs: the server's own count is one
	// run, with Oslo's arguments, so Bergen never reached it.
	res, err = callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": "Oslo"})
	wantEcho(t, res, err, map[string]any{"city": "Oslo"})
	if n := e.mcp.Calls(testenv.MCPToolEcho); n != 1 || !strings.Contains(string(e.mcp.LastArguments(testenv.MCPToolEcho)), "Oslo") {
		t.Fatalf("the server ran echo %d times, last with %s; want once, with Oslo", n, e.mcp.LastArguments(testenv.MCPToolEcho))
	}
	// An agent agentg saw no model turn of is not refused: its model
	// path does not go through agentg.
	res, err = callTool(t, e.mcpClient(t, "no-model"), testenv.MCPToolEcho, map[string]any{"city": "Molde"})
	wantEcho(t, res, err, map[string]any{"city": "Molde"})
}

func TestLLMLinkGatewayDoor(t *testing.T) {
	e := startLink(t, "", "--gateway", "127.0.0.1:0")
	if e.a.Gateway == "" {
		t.Fatal("agentg did not say where its gateway listens")
	}
	// Without a gateway: section the gateway names agents by address, as
	// the proxy names a client without credentials: the model call goes
	// through the proxy without a user, so both doors see agent 127.0.0.1.
	const agent = "127.0.0.1"
	e.model.set(anthropicToolUse("Think about Narvik.", "Asking the gateway about Narvik.", "gw.echo", `{"city":"Narvik"}`))
	c := anthropic.NewClient(aopt.WithBaseURL("https://api.anthropic.com:"+e.port), aopt.WithAPIKey("sk-ant-placeholder-key"),
		aopt.WithMaxRetries(0), aopt.WithHTTPClient(&http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{Proxy: http.ProxyURL(e.a.URL()), TLSClientConfig: e.pool}}))
	if _, err := c.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 64,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Narvik?"))}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	turn, err := e.a.WaitEvent(ctx, func(m map[string]any) bool { return m["kind"] == "llm" && m["agent"] == agent })
	if err != nil {
		t.Fatal(err)
	}
	cl := connectGateway(t, mcpCtx(t), "http://"+e.a.Gateway+"/mcp", "2025-11-25", nil)
	res, err := cl.CallTool(mcpCtx(t), &mcp.CallToolParams{Name: "gw.echo", Arguments: map[string]any{"city": "Narvik"}})
	wantEcho(t, res, err, map[string]any{"city": "Narvik"})
	ev := e.callEvent(t, agent, "Narvik")
	if ev["door"] != "gateway" || ev["llm_turn"] != turn["id"] || ev["turn_text"] != "Asking the gateway about Narvik." || ev["turn_reasoning"] != "Think about Narvik." {
		t.Fatalf("the gateway call's event: %v, want it tied to turn %v", ev, turn["id"])
	}
	res, err = cl.CallTool(mcpCtx(t), &mcp.CallToolParams{Name: "gw.echo", Arguments: map[string]any{"city": "Tromso"}})
	wantEcho(t, res, err, map[string]any{"city": "Tromso"})
	if ev := e.callEvent(t, agent, "Tromso"); ev["unrequested"] != true || ev["door"] != "gateway" {
		t.Errorf("an unrequested call through the gateway: %v", ev)
	}
}

// Minimal answers of each provider, for calls whose request is the point.
const (
	openaiChatAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":"ok","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`
	openaiResponsesAnswer = `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"o4-mini-2025-04-16",` +
		`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],` +
		`"usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":0},"output_tokens":1,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":6}}`
	anthropicTextAnswer = `{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",` +
		`"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}`
	geminiAnswer = `{"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},"finishReason":"STOP","index":0}],` +
		`"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1,"totalTokenCount":6},"modelVersion":"gemini-2.5-flash"}`
)

// TestLLMRedactOnTheWay: a redact rule's match in what an agent sends its
// model is replaced before the provider gets it, in every dialect, and
// the request still decodes as the provider SDK's own request type; a
// held value, even past the part of a body the leak guard reads of other
// requests, is refused in the provider's error shape and never reaches it.
func TestLLMRedactOnTheWay(t *testing.T) {
	e := startLink(t, "")
	ctx := t.Context()
	base := "https://api.openai.com:" + e.port + "/v1"
	const said = "please check Disk X99 today"
	for _, tt := range []struct {
		dialect, answer string
		call            func(hc *http.Client) error
	}{
		{"openai-chat", openaiChatAnswer, func(hc *http.Client) error {
			c := openai.NewClient(oopt.WithBaseURL(base), oopt.WithAPIKey("sk-placeholder"), oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
			_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage(said)}})
			return err
		}},
		{"openai-responses", openaiResponsesAnswer, func(hc *http.Client) error {
			c := openai.NewClient(oopt.WithBaseURL(base), oopt.WithAPIKey("sk-placeholder"), oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
			_, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "o4-mini", Instructions: openai.String("be brief"),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(said)}})
			return err
		}},
		{"anthropic-messages", anthropicTextAnswer, func(hc *http.Client) error {
			c := anthropic.NewClient(aopt.WithBaseURL("https://api.anthropic.com:"+e.port), aopt.WithAPIKey("sk-ant-placeholder-key"),
				aopt.WithMaxRetries(0), aopt.WithHTTPClient(hc))
			_, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 64,
				System:   []anthropic.TextBlockParam{{Text: "be brief"}},
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(said))}})
			return err
		}},
		{"gemini", geminiAnswer, func(hc *http.Client) error {
			c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: "gm-placeholder-key", Backend: genai.BackendGeminiAPI, HTTPClient: hc,
				HTTPOptions: genai.HTTPOptions{BaseURL: "https://generativelanguage.googleapis.com:" + e.port}})
			if err != nil {
				return err
			}
			_, err = c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(said), nil)
			return err
		}},
	} {
		t.Run(tt.dialect, func(t *testing.T) {
			agent := "redact-" + tt.dialect
			e.model.set(tt.answer)
			before, _ := e.model.received()
			if err := tt.call(e.httpClient(agent)); err != nil {
				t.Fatalf("the SDK's call failed: %v", err)
			}
			bodies, errs := e.model.received()
			if len(bodies) != len(before)+1 {
				t.Fatalf("the provider got %d requests, want 1", len(bodies)-len(before))
			}
			got, derr := bodies[len(bodies)-1], errs[len(errs)-1]
			if derr != nil {
				t.Errorf("the provider could not decode the request with its SDK's type: %v\n%s", derr, got)
			}
			if strings.Contains(got, "X99") || !strings.Contains(got, "please check [REDACTED:disk] today") {
				t.Errorf("the provider got %s, want the match replaced", got)
			}
			ev := llmEventOf(t, e.a, agent)
			if r, _ := ev["redactions"].([]any); len(r) != 1 || r[0] != "disk" || ev["decision"] != "allow" {
				t.Errorf("the llm event: redactions %v, decision %v", ev["redactions"], ev["decision"])
			}
		})
	}

	t.Run("leak", func(t *testing.T) {
		const agent = "leaker"
		e.model.set(openaiChatAnswer)
		before, _ := e.model.received()
		c := openai.NewClient(oopt.WithBaseURL(base), oopt.WithAPIKey("sk-placeholder"), oopt.WithMaxRetries(0), oopt.WithHTTPClient(e.httpClient(agent)))
		// The value past the first 64 KiB: what the leak guard reads of
		// any other body.
		msg := strings.Repeat("the file says: ", 5000) + linkSecret
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(msg)}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || !strings.Contains(apiErr.Message, "builtin:credential-leak") {
			t.Fatalf("a held value to the model: %v, want the provider's 403 naming builtin:credential-leak", err)
		}
		ev := llmEventOf(t, e.a, agent)
		if ev["decision"] != "deny" || ev["rule"] != "builtin:credential-leak" || ev["credential"] != "gh" {
			t.Errorf("the refusal's event: %v", ev)
		}
		// A later call of the same agent reaches the provider: the one
		// request it got after the refusal is that one.
		if _, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("marker call")}}); err != nil {
			t.Fatal(err)
		}
		bodies, _ := e.model.received()
		if len(bodies) != len(before)+1 || !strings.Contains(bodies[len(bodies)-1], "marker call") {
			t.Fatalf("the provider got %d requests after the refusal, want only the marker", len(bodies)-len(before))
		}
		for _, b := range bodies {
			if strings.Contains(b, linkSecret) {
				t.Fatal("the held value reached the provider")
			}
		}
	})
}

// TestLLMLinkStreamed: the agent reads a streamed turn to its end and
// calls the tool at once, while the provider still holds the stream open:
// agentg has not kept the turn yet, and the call waits for it rather than
// being called unrequested.
func TestLLMLinkStreamed(t *testing.T) {
	e := startLink(t, "  unrequested: deny\n")
	const agent = "streamer"
	chunk := func(delta, finish string) string {
		return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":` +
			delta + `,"finish_reason":` + finish + `}]}` + "\n\n"
	}
	cl := e.mcpClient(t, agent)
	// A first turn, so that the agent's model path is known to agentg.
	e.turn(t, agent, anthropicToolUse("", "warming up", "srv.echo", `{"city":"nowhere"}`))
	e.model.mu.Lock()
	e.model.answer = chunk(`{"role":"assistant","content":"Looking up Hamar."}`, "null") +
		chunk(`{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"srv.echo","arguments":""}}]}`, "null") +
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`, "null") +
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Hamar\"}"}}]}`, "null") +
		chunk(`{}`, `"tool_calls"`) + "data: [DONE]\n\n"
	e.model.linger = 500 * time.Millisecond
	e.model.mu.Unlock()

	c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+e.port+"/v1"), oopt.WithAPIKey("sk-placeholder"),
		oopt.WithMaxRetries(0), oopt.WithHTTPClient(e.httpClient(agent)))
	st := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hamar?")}})
	acc := openai.ChatCompletionAccumulator{}
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) != 1 || len(acc.Choices[0].Message.ToolCalls) != 1 || acc.Choices[0].Message.ToolCalls[0].Function.Arguments != `{"city":"Hamar"}` {
		t.Fatalf("the SDK read %+v", acc.Choices)
	}
	res, err := callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": "Hamar"})
	turn := llmEventOfDialect(t, e.a, agent, "openai-chat")
	wantEcho(t, res, err, map[string]any{"city": "Hamar"})
	ev := e.callEvent(t, agent, "Hamar")
	if ev["llm_turn"] != turn["id"] || ev["turn_text"] != "Looking up Hamar." || ev["unrequested"] != nil {
		t.Fatalf("the call's event %v, want it tied to turn %v", ev, turn["id"])
	}
	st.Close()
}

func llmEventOfDialect(t *testing.T, a *testenv.Agentg, agent, dialect string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	ev, err := a.WaitEvent(ctx, func(m map[string]any) bool {
		return m["kind"] == "llm" && m["agent"] == agent && m["dialect"] == dialect
	})
	if err != nil {
		t.Fatalf("no %s llm event for %s: %v", dialect, agent, err)
	}
	return ev
}

// TestLLMLinkUnrequestedApprove: under unrequested: approve, a call no
// turn asked for is held like an approve rule's: it runs once approved,
// not before.
func TestLLMLinkUnrequestedApprove(t *testing.T) {
	e := startLink(t, "  unrequested: approve\n")
	tok, err := e.a.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	adm, err := admin.NewClient(e.a.AdminAddr, tok)
	if err != nil {
		t.Fatal(err)
	}
	const agent = "held-agent"
	e.turn(t, agent, anthropicToolUse("", "Oslo.", "mcp__srv__echo", `{"city":"Oslo"}`))
	cl := e.mcpClient(t, agent)
	ch := callAsync(cl, testenv.MCPToolEcho, map[string]any{"city": "Lillehammer"})
	var items []admin.Approval
	for deadline := time.Now().Add(10 * time.Second); len(items) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if items, err = adm.Approvals(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if len(items) != 1 {
		t.Fatalf("%d approvals pending, want the unrequested call held", len(items))
	}
	if n := e.mcp.Calls(testenv.MCPToolEcho); n != 0 {
		t.Fatalf("the held call ran %d times before it was approved", n)
	}
	if _, err := adm.Approve(t.Context(), items[0].ID, admin.ApproveRequest{}); err != nil {
		t.Fatal(err)
	}
	r := awaitCall(t, ch)
	wantEcho(t, r.res, r.err, map[string]any{"city": "Lillehammer"})
	if n := e.mcp.Calls(testenv.MCPToolEcho); n != 1 {
		t.Fatalf("the approved call ran %d times", n)
	}
	if ev := e.callEvent(t, agent, "Lillehammer"); ev["unrequested"] != true || ev["rule"] != "mcp:unrequested" {
		t.Errorf("the held call's event: %v", ev)
	}
}

// TestLLMRedactUnreadable: a model request agentg cannot read, which
// unparsed: report would let through, is refused when a redact rule
// covers the agent and matches it: it could not be redacted.
func TestLLMRedactUnreadable(t *testing.T) {
	e := startLinkPolicy(t, func(addr string) string { return linkPolicyUnparsed(addr, "", "report") })
	e.model.set(openaiChatAnswer)
	hc := e.httpClient("unreadable")
	post := func(body string) *http.Response {
		t.Helper()
		resp, err := hc.Post("https://api.openai.com:"+e.port+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// "model" twice: servers read it apart, so agentg cannot read it.
	if resp := post(`{"model":"gpt-4o","model":"gpt-4o","messages":[{"role":"user","content":"Disk X42 is full"}]}`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unreadable request a redact rule matches: %s, want 400", resp.Status)
	}
	ev := llmEventOf(t, e.a, "unreadable")
	if ev["rule"] != "builtin:llm-redact" || ev["decision"] != "deny" {
		t.Errorf("the refusal's event: %v", ev)
	}
	// The same unreadable shape with nothing to redact passes (report),
	// and is the one request the provider got.
	if resp := post(`{"model":"gpt-4o","model":"gpt-4o","messages":[{"role":"user","content":"nothing here"}]}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("an unreadable request with nothing to redact: %s, want it passed under unparsed: report", resp.Status)
	}
	bodies, _ := e.model.received()
	if len(bodies) != 1 || strings.Contains(bodies[0], "X42") {
		t.Fatalf("the provider got %q", bodies)
	}
}
