package test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// Issue 18, policy on the model path: the tool-use guard and the token
// and cost quotas, judged by the providers' own SDKs through agentg
// against the loopback providers of llm_test.go.
//
// The guard: agents named deny* have every tool call denied by the mcp
// tool rules (jira.create_issue by its own rule, the rest by "*"); agents
// named ok* have none denied. A denied call must be absent from what the
// SDK parsed (its arguments nowhere in the bytes it read), the note
// naming the rule there instead, the stop reason fixed, and the SDK must
// read the answer without error; an allowed one passes byte for byte.

// denyAgents are the agents whose tool calls are denied: one per case.
var denyAgents = "deny-openai-chat, deny-openai-chat-stream, deny-openai-responses, deny-openai-responses-stream, " +
	"deny-anthropic, deny-anthropic-stream, deny-gemini, deny-gemini-stream"

func llmGuardPolicy() string {
	p := llmPolicy()
	p = strings.Replace(p, `mcp:
  redact:`, `mcp:
  servers:
    - name: jira
      url: "jira.internal.example/mcp"
    - name: calendar
      url: "calendar.internal.example/mcp"
  tools:
    - deny: "jira.create_issue"
      agents: [`+denyAgents+`]
      id: no-jira-create
    - deny: "*"
      agents: [`+denyAgents+`]
      id: no-tools
    - deny: "calendar.get_forecast"
      agents: [bare-gemini-stream]
      id: no-forecast
    - approve: "calendar.get_forecast"
      agents: [hold-stream]
      id: hold-forecast
      timeout: 1s
    - approve: "calendar.list_events"
      agents: [hold, hold-approve]
      id: hold-calendar
      timeout: 1s
  redact:`, 1)
	p = strings.Replace(p, `llm:
  unparsed: deny`, `llm:
  unparsed: deny
  tool_use: enforce
  quotas:
    - id: q-tokens
      agents: [quota-oa, quota-an, quota-ge]
      tokens: 100/h
      per: [agent]
    - id: q-cost
      agents: [quota-cost]
      models: ["gpt-4o*"]
      cost: "0.001/d"
    - id: q-report
      agents: [quota-report]
      tokens: 100/h
      mode: report`, 1)
	return p
}

func openaiClient(srv *testenv.Upstream, hc *http.Client) *openai.Client {
	c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
		oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
	return &c
}

func anthropicClient(srv *testenv.Upstream, hc *http.Client) *anthropic.Client {
	c := anthropic.NewClient(aopt.WithBaseURL("https://api.anthropic.com:"+srv.Port), aopt.WithAPIKey(llmAPIKey),
		aopt.WithMaxRetries(0), aopt.WithHTTPClient(hc))
	return &c
}

func geminiClient(t *testing.T, srv *testenv.Upstream, hc *http.Client) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(t.Context(), &genai.ClientConfig{APIKey: llmAPIKey, Backend: genai.BackendGeminiAPI, HTTPClient: hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: "https://generativelanguage.googleapis.com:" + srv.Port}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// guardEventOf waits for the llm-tool event of agent's call, by rule.
func guardEventOf(t *testing.T, a *testenv.Agentg, agent, rule string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ev, err := a.WaitEvent(ctx, func(e map[string]any) bool {
		return e["kind"] == "llm-tool" && e["agent"] == agent && e["rule"] == rule
	})
	if err != nil {
		t.Fatalf("no llm-tool event for %s by %s: %v", agent, rule, err)
	}
	return ev
}

// guardCase is one dialect, whole or streamed: call runs the SDK and
// returns what it parsed: the tool calls' names, the text, the stop
// reason.
type guardCase struct {
	name, file string
	args       string // a piece of the fixture's tool call arguments
	rule       string // the rule that denies it for deny*
	stop       string // the stop reason once struck ("" none to check)
	call       func(t *testing.T, hc *http.Client) (tools []string, text, stop string)
}

func guardCases(srv *testenv.Upstream) []guardCase {
	ctx := context.Background()
	chat := openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	resp := responses.ResponseNewParams{Model: "o4-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}
	anth := anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	chatOut := func(m openai.ChatCompletionMessage, finish string) ([]string, string, string) {
		var tools []string
		for _, tc := range m.ToolCalls {
			tools = append(tools, tc.Function.Name)
		}
		return tools, m.Content, finish
	}
	respOut := func(r *responses.Response) ([]string, string, string) {
		var tools []string
		for _, it := range r.Output {
			if it.Type == "function_call" {
				tools = append(tools, it.Name)
			}
		}
		return tools, r.OutputText(), ""
	}
	anthOut := func(m *anthropic.Message) ([]string, string, string) {
		var tools []string
		var text string
		for _, b := range m.Content {
			switch b.Type {
			case "tool_use":
				tools = append(tools, b.Name)
			case "text":
				text += b.Text
			}
		}
		return tools, text, string(m.StopReason)
	}
	gemOut := func(rs ...*genai.GenerateContentResponse) ([]string, string, string) {
		var tools []string
		var text, stop string
		for _, r := range rs {
			for _, fc := range r.FunctionCalls() {
				tools = append(tools, fc.Name)
			}
			text += r.Text()
			if len(r.Candidates) > 0 && r.Candidates[0].FinishReason != "" {
				stop = string(r.Candidates[0].FinishReason)
			}
		}
		return tools, text, stop
	}
	return []guardCase{
		{"openai-chat", "openai_chat.json", "Disk full on db-1", "no-jira-create", "stop", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			r, err := openaiClient(srv, hc).Chat.Completions.New(ctx, chat)
			if err != nil {
				t.Fatal(err)
			}
			return chatOut(r.Choices[0].Message, r.Choices[0].FinishReason)
		}},
		{"openai-chat-stream", "openai_chat_stream.sse", "Boston", "no-tools", "stop", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			st := openaiClient(srv, hc).Chat.Completions.NewStreaming(ctx, chat)
			acc := openai.ChatCompletionAccumulator{}
			for st.Next() {
				if !acc.AddChunk(st.Current()) {
					t.Fatal("the SDK's accumulator refused a chunk")
				}
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			return chatOut(acc.Choices[0].Message, acc.Choices[0].FinishReason)
		}},
		{"openai-responses", "openai_responses.json", "Paris", "no-tools", "", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			r, err := openaiClient(srv, hc).Responses.New(ctx, resp)
			if err != nil {
				t.Fatal(err)
			}
			return respOut(r)
		}},
		{"openai-responses-stream", "openai_responses_stream.sse", `\"disk\"`, "no-tools", "", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			st := openaiClient(srv, hc).Responses.NewStreaming(ctx, resp)
			var done *responses.Response
			var deltas []string
			for st.Next() {
				ev := st.Current()
				switch ev.Type {
				case "response.completed":
					r := ev.AsResponseCompleted().Response
					done = &r
				case "response.function_call_arguments.delta":
					deltas = append(deltas, ev.Delta)
				}
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if done == nil {
				t.Fatal("no response.completed")
			}
			tools, text, stop := respOut(done)
			if len(deltas) > 0 && len(tools) == 0 {
				tools = append(tools, "(argument deltas of a struck call)")
			}
			return tools, text, stop
		}},
		{"anthropic", "anthropic.json", "OPS", "no-jira-create", "end_turn", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			m, err := anthropicClient(srv, hc).Messages.New(ctx, anth)
			if err != nil {
				t.Fatal(err)
			}
			return anthOut(m)
		}},
		{"anthropic-stream", "anthropic_stream.sse", "San Francisco, CA\\\", \\\"unit", "no-tools", "end_turn", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			st := anthropicClient(srv, hc).Messages.NewStreaming(ctx, anth)
			var m anthropic.Message
			for st.Next() {
				if err := m.Accumulate(st.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			return anthOut(&m)
		}},
		{"gemini", "gemini.json", "2026-12-08", "no-tools", "STOP", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			r, err := geminiClient(t, srv, hc).Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
			if err != nil {
				t.Fatal(err)
			}
			return gemOut(r)
		}},
		{"gemini-stream", "gemini_stream.sse", "Oslo", "no-tools", "STOP", func(t *testing.T, hc *http.Client) ([]string, string, string) {
			var rs []*genai.GenerateContentResponse
			for r, err := range geminiClient(t, srv, hc).Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			return gemOut(rs...)
		}},
	}
}

func TestLLMToolUseGuard(t *testing.T) {
	a, u, srv, client := startLLMWith(t, llmGuardPolicy())
	testenv.Secrets(t, llmHeldKey) // with llmAPIKey: in nothing agentg wrote or answered
	for _, c := range guardCases(srv) {
		t.Run(c.name, func(t *testing.T) {
			// Allowed: the very bytes the server sent.
			hc, rec := client("ok-" + c.name)
			tools, _, _ := c.call(t, hc)
			if len(tools) != 1 {
				t.Errorf("allowed: the SDK parsed tool calls %v, want the fixture's one", tools)
			}
			if !bytes.Equal(rec.body(), u.fixtures[c.file]) {
				t.Errorf("allowed: the SDK got other bytes than the server sent:\n%s", rec.body())
			}

			// Denied: struck, the note there, the SDK content.
			deny := "deny-" + c.name
			hc, rec = client(deny)
			tools, text, stop := c.call(t, hc)
			if len(tools) != 0 {
				t.Errorf("denied: the SDK parsed tool calls %v", tools)
			}
			if !strings.Contains(text, "removed: denied by rule "+c.rule) {
				t.Errorf("denied: the SDK read text %q, want the note naming %s", text, c.rule)
			}
			if c.stop != "" && stop != c.stop {
				t.Errorf("denied: stop reason %q, want %q", stop, c.stop)
			}
			if bytes.Contains(rec.body(), []byte(c.args)) {
				t.Errorf("denied: the call's arguments reached the agent:\n%s", rec.body())
			}
			ev := guardEventOf(t, a, deny, c.rule)
			if ev["decision"] != "deny" || ev["parent"] == nil {
				t.Errorf("llm-tool event %v", ev)
			}
			turn := llmEventOf(t, a, deny)
			if turn["id"] != ev["parent"] {
				t.Errorf("the llm-tool event's parent %v is not the turn's event %v", ev["parent"], turn["id"])
			}
		})
	}
	// A bare tool name no convention maps is held to the strictest rule
	// for it on any server: calendar.get_forecast's deny strikes the
	// model's get_forecast.
	bare := guardCases(srv)[7]
	hc, rec := client("bare-gemini-stream")
	if tools, text, _ := bare.call(t, hc); len(tools) != 0 || !strings.Contains(text, "denied by rule no-forecast") ||
		bytes.Contains(rec.body(), []byte(bare.args)) {
		t.Errorf("bare name: tools %v text %q", tools, text)
	}
	if ev := guardEventOf(t, a, "bare-gemini-stream", "no-forecast"); ev["server"] != "calendar" || ev["tool"] != "get_forecast" {
		t.Errorf("bare name event %v", ev)
	}
	// The rule's server and tool, read from the model's name.
	ev := guardEventOf(t, a, "deny-openai-chat", "no-jira-create")
	if ev["server"] != "jira" || ev["tool"] != "create_issue" {
		t.Errorf("mcp__jira__create_issue decided as %v.%v", ev["server"], ev["tool"])
	}
	// The arguments on the event are redacted by the mcp redact rules.
	if args, _ := ev["args"].(string); strings.Contains(args, "Disk full") || !strings.Contains(args, "[REDACTED:disk]") {
		t.Errorf("event args %q", args)
	}
}

// An approve rule holds the answer's tool call: the answer waits, and
// the call is struck when the hold ends without approval (its 1s timeout)
// or passes when an approver approves it.
func TestLLMToolUseHold(t *testing.T) {
	a, u, srv, client := startLLMWith(t, llmGuardPolicy())
	gem := guardCases(srv)[6]

	hc, rec := client("hold")
	start := time.Now()
	tools, text, _ := gem.call(t, hc)
	if len(tools) != 0 || !strings.Contains(text, "removed: not approved by rule hold-calendar") {
		t.Errorf("expired hold: tools %v text %q", tools, text)
	}
	if time.Since(start) < time.Second {
		t.Errorf("the answer came in %v, before the hold's timeout", time.Since(start))
	}
	if bytes.Contains(rec.body(), []byte("2026-12-08")) {
		t.Error("the held call's arguments reached the agent")
	}
	ev := guardEventOf(t, a, "hold", "hold-calendar")
	if ev["decision"] != "deny" {
		t.Errorf("expired hold event %v", ev)
	}

	// Streamed: the text before the held call reaches the SDK at once;
	// the call's own events wait for the hold, and are struck when it
	// expires.
	hc, rec = client("hold-stream")
	start = time.Now()
	var firstText time.Duration
	var streamed []string
	for r, err := range geminiClient(t, srv, hc).Models.GenerateContentStream(t.Context(), "gemini-2.5-flash", genai.Text("hi"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if firstText == 0 && r.Text() != "" {
			firstText = time.Since(start)
		}
		for _, fc := range r.FunctionCalls() {
			streamed = append(streamed, fc.Name)
		}
	}
	if len(streamed) != 0 || bytes.Contains(rec.body(), []byte("Oslo")) || !bytes.Contains(rec.body(), []byte("not approved by rule hold-forecast")) {
		t.Errorf("expired streamed hold: calls %v\n%s", streamed, rec.body())
	}
	if firstText == 0 || firstText >= time.Second || time.Since(start) < time.Second {
		t.Errorf("first text after %v, whole stream %v: want the text before the 1s hold ended, the end after", firstText, time.Since(start))
	}
	if ev := guardEventOf(t, a, "hold-stream", "hold-forecast"); ev["decision"] != "deny" {
		t.Errorf("expired streamed hold event %v", ev)
	}

	tok, err := a.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	ac, err := admin.NewClient(a.AdminAddr, tok)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx := t.Context(); ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
			items, _ := ac.Approvals(ctx)
			for _, it := range items {
				if it.Agent == "hold-approve" {
					if _, err := ac.Approve(ctx, it.ID, admin.ApproveRequest{}); err != nil {
						t.Errorf("approve: %v", err)
					}
					return
				}
			}
		}
	}()
	hc, rec = client("hold-approve")
	tools, _, _ = gem.call(t, hc)
	wg.Wait()
	if len(tools) != 1 || !bytes.Equal(rec.body(), u.fixtures[gem.file]) {
		t.Errorf("approved hold: tools %v, bytes\n%s", tools, rec.body())
	}
	if ev := guardEventOf(t, a, "hold-approve", "hold-calendar"); ev["decision"] != "allow" {
		t.Errorf("approved hold event %v", ev)
	}
}

// Under enforce, an answer the guard cannot read never reaches the
// agent: a 502 in the provider's error shape instead, the turn's event a
// deny by llm:tool_use.
func TestLLMToolUseFailsClosed(t *testing.T) {
	a, _, srv, client := startLLMWith(t, llmGuardPolicy())
	for _, model := range []string{"gpt-gzip-always", "gpt-garbage"} {
		agent := "fc-" + model
		hc, rec := client(agent)
		_, err := openaiClient(srv, hc).Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || !strings.Contains(apiErr.Message, "tool_use") {
			t.Fatalf("%s: want a 502 *openai.Error, got %T %v", model, err, err)
		}
		if bytes.Contains(rec.body(), []byte("mcp__jira")) || bytes.Contains(rec.body(), []byte("not json")) {
			t.Errorf("%s: the unread answer reached the agent:\n%s", model, rec.body())
		}
		ev := llmEventOf(t, a, agent)
		if ev["decision"] != "deny" || ev["rule"] != "llm:tool_use" || num(ev, "status") != 502 {
			t.Errorf("%s: event %v", model, ev)
		}
	}
}

// tool_use: report decides and logs, and changes nothing: the denied
// call reaches the agent byte for byte, its event says report.
func TestLLMToolUseReport(t *testing.T) {
	policy := strings.Replace(llmGuardPolicy(), "tool_use: enforce", "tool_use: report", 1)
	a, u, srv, client := startLLMWith(t, policy)
	for _, c := range []guardCase{guardCases(srv)[0], guardCases(srv)[5]} {
		deny := "deny-" + c.name
		hc, rec := client(deny)
		if tools, _, _ := c.call(t, hc); len(tools) != 1 {
			t.Errorf("%s: tools %v", c.name, tools)
		}
		if !bytes.Equal(rec.body(), u.fixtures[c.file]) {
			t.Errorf("%s: the answer changed under report", c.name)
		}
		if ev := guardEventOf(t, a, deny, c.rule); ev["decision"] != "report" {
			t.Errorf("%s: event %v", c.name, ev)
		}
	}
}
