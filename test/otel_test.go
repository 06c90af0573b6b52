package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	oopt "github.com/openai/openai-go/v3/option"

	"github.com/agentg/agentg/internal/app"
	"github.com/agentg/agentg/internal/testenv"
)

// Issue 18, traces: agentg (its own process, --otlp-endpoint) exports
// every event as a span to an OTLP/HTTP receiver on loopback that decodes
// the protobufs. A model turn made with openai-go is a GenAI span under
// its HTTP request; the MCP tool call the agent then makes through
// agentg (official Go SDK client and server) is a span under the turn
// that asked for it (llm_turn, once that lands) or else under its own
// HTTP request (parent); a tool's own requests (caused_by) are the tool
// call's children. A collector that never answers slows no request.

// otelTurn answers a chat completion that asks for the MCP tool
// srv.echo, as a model that sees it as mcp__srv__echo does.
const otelTurn = `{"id":"chatcmpl-otel1","object":"chat.completion","created":1733000000,"model":"gpt-4o-2024-08-06",
"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_otel1","type":"function",
"function":{"name":"mcp__srv__echo","arguments":"{\"text\":\"hi\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}`

const otelHeaderToken = "otlp-bearer-5d1e9a7c-SECRET"

func otelPolicy() string {
	return `
default: deny
free_agent_names: true
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [api.openai.com, mcp.test, plain.test]
resolve:
  api.openai.com: [127.0.0.1]
  mcp.test: [127.0.0.1]
  plain.test: [127.0.0.1]
intercept: [mcp.test]
llm:
  unparsed: deny
  prices:
    - model: "gpt-4o*"
      input: 2.5
      output: 10
` + mcpBase
}

func TestOTLPTraces(t *testing.T) {
	recv := testenv.StartOTLPReceiver(false)
	defer recv.Close()
	dir := t.TempDir()
	upCA, err := testenv.NewCA("otel upstream root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	cert, err := upCA.Leaf([]string{"api.openai.com"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	model := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, otelTurn)
	})})
	defer model.Close()
	srv := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA})

	testenv.Secrets(t, llmAPIKey, otelHeaderToken)
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: otelPolicy(),
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s",
			"--otlp-endpoint", recv.Endpoint(), "--otlp-header", "Authorization=Bearer " + otelHeaderToken}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The model turn, through agentg as agent bot.
	pu := a.URL()
	pu.User = url.UserPassword("bot", "x")
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	oc := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+model.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
		oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
	res, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("echo hi")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || len(res.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("the model's answer: %+v", res)
	}

	// The tool call it asked for, through agentg as the same agent.
	cl, err := testenv.ConnectMCP(ctx, srv.Mode, srv.URL, testenv.MCPClientConfig{Proxy: pu, Roots: pool, Revision: "2025-06-18"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	args := map[string]any{"text": "hi"}
	out, err := callTool(t, cl, testenv.MCPToolEcho, args)
	wantEcho(t, out, err, args)

	turn, err := a.WaitEvent(ctx, func(e map[string]any) bool { return e["kind"] == "llm" && e["agent"] == "bot" })
	if err != nil {
		t.Fatal(err)
	}
	turnReq, err := a.WaitEvent(ctx, func(e map[string]any) bool { return e["kind"] == "http" && e["id"] == turn["parent"] })
	if err != nil {
		t.Fatal(err)
	}
	call, err := a.WaitEvent(ctx, func(e map[string]any) bool {
		return e["kind"] == "mcp" && e["method"] == "tools/call" && e["tool"] == testenv.MCPToolEcho
	})
	if err != nil {
		t.Fatal(err)
	}

	spanOfEvent := func(ev map[string]any) testenv.Span {
		t.Helper()
		sp, err := recv.WaitSpan(ctx, func(s testenv.Span) bool { return s.Str("agentg.event.id") == ev["id"] })
		if err != nil {
			t.Fatalf("no span for event %v: %v", ev, err)
		}
		return sp
	}
	turnSpan, reqSpan, callSpan := spanOfEvent(turn), spanOfEvent(turnReq), spanOfEvent(call)

	// The turn: a GenAI span, child of its HTTP request, in its trace.
	if turnSpan.Name != "chat gpt-4o" {
		t.Errorf("turn span named %q, want \"chat gpt-4o\"", turnSpan.Name)
	}
	for k, v := range map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
		"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": int64(19), "gen_ai.usage.output_tokens": int64(10),
		"server.address": "api.openai.com", "agentg.agent": "bot", "agentg.decision": "allow"} {
		if turnSpan.Attrs[k] != v {
			t.Errorf("turn span %s = %#v, want %#v", k, turnSpan.Attrs[k], v)
		}
	}
	if fr, _ := turnSpan.Attrs["gen_ai.response.finish_reasons"].([]any); len(fr) != 1 || fr[0] != "tool_calls" {
		t.Errorf("turn span finish_reasons = %v", turnSpan.Attrs["gen_ai.response.finish_reasons"])
	}
	if turnSpan.Parent != reqSpan.SpanID || turnSpan.TraceID != reqSpan.TraceID {
		t.Errorf("turn span: parent %s trace %s; want its request's span %s in trace %s", turnSpan.Parent, turnSpan.TraceID, reqSpan.SpanID, reqSpan.TraceID)
	}
	if reqSpan.Name != "POST" || reqSpan.Attrs["http.request.method"] != "POST" || reqSpan.Attrs["http.response.status_code"] != int64(200) || reqSpan.Parent != "" {
		t.Errorf("request span %q parent %q: %v", reqSpan.Name, reqSpan.Parent, reqSpan.Attrs)
	}

	// The tool call: an MCP span, under the turn that asked for it when
	// the event names it, else under the HTTP request that carried it.
	if callSpan.Name != "tools/call echo" {
		t.Errorf("tool span named %q", callSpan.Name)
	}
	for k, v := range map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": "echo", "gen_ai.operation.name": "execute_tool",
		"mcp.protocol.version": "2025-06-18", "agentg.mcp.server": "srv"} {
		if callSpan.Attrs[k] != v {
			t.Errorf("tool span %s = %#v, want %#v", k, callSpan.Attrs[k], v)
		}
	}
	if callSpan.Str("mcp.session.id") == "" {
		t.Errorf("tool span has no mcp.session.id: %v", callSpan.Attrs)
	}
	want := turnSpan
	if lt, _ := call["llm_turn"].(string); lt == "" {
		t.Log("the tools/call event names no llm_turn (not merged yet): its span's parent is its HTTP request")
		callReq, err := a.WaitEvent(ctx, func(e map[string]any) bool { return e["kind"] == "http" && e["id"] == call["parent"] })
		if err != nil {
			t.Fatal(err)
		}
		want = spanOfEvent(callReq)
	} else if lt != turn["id"] {
		t.Fatalf("the tools/call names turn %s, want %s", lt, turn["id"])
	}
	if callSpan.Parent != want.SpanID || callSpan.TraceID != want.TraceID {
		t.Errorf("tool span: parent %s trace %s; want %q's span %s in trace %s", callSpan.Parent, callSpan.TraceID, want.Name, want.SpanID, want.TraceID)
	}

	// No secret in any span: the agent's API key and the collector's
	// token (agentg's own output is searched by the leak check).
	for _, sp := range recv.Spans() {
		for k, v := range sp.Attrs {
			if s := fmt.Sprint(v); strings.Contains(s, llmAPIKey) || strings.Contains(s, otelHeaderToken) {
				t.Errorf("span %q attribute %s holds a secret", sp.Name, k)
			}
		}
	}
	if got := recv.Header().Get("Authorization"); got != "Bearer "+otelHeaderToken {
		t.Errorf("the receiver got Authorization %q", got)
	}
	if n := otelMetric(t, a, "agentg_otlp_exported_spans_total"); n < 4 {
		t.Errorf("agentg_otlp_exported_spans_total = %v, want at least the 4 spans received", n)
	}
}

// A tool's own requests (a command server's egress, caused_by) are its
// call's children. The gateway does not serve command servers yet, so
// the call is driven through the child interface, in process: the same
// app Start as serve, with the OTLP config serve's flags make.
func TestOTLPToolRequestsAreChildren(t *testing.T) {
	recv := testenv.StartOTLPReceiver(false)
	defer recv.Close()
	bin, err := testenv.StdioServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "reached %s", r.URL.Path)
	})})
	defer up.Close()
	const env = "AGENTG_TEST_OTEL_CHILD_TOKEN"
	t.Setenv(env, childSecret)
	e := startInProcessWith(t, childPolicy(bin, filepath.Join(t.TempDir(), "marks"), env), func(c *app.Config) {
		c.OTLP = app.OTLPConfig{Endpoint: recv.Endpoint(), Queue: 1024}
	})
	ch, ok := e.app.Stdio().Child("files")
	if !ok {
		t.Fatal("no child for the command server files")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := ch.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := newStdioClient(t, e, proc)
	c.initialize()
	r := c.call("tools/call", map[string]any{"name": "fetch", "arguments": map[string]any{"url": "http://api.egress.test:" + up.Port + "/traced"}})
	if txt := toolText(t, r); !strings.HasPrefix(txt, "200 reached") {
		t.Fatalf("fetch: %q", txt)
	}
	call := e.waitEvent(map[string]any{"kind": "mcp", "tool": "fetch", "door": "gateway", "decision": "allow"})
	req := e.waitEvent(map[string]any{"kind": "http", "path": "/traced", "caused_by": call.str("id")})

	span := func(id string) testenv.Span {
		t.Helper()
		sp, err := recv.WaitSpan(ctx, func(s testenv.Span) bool { return s.Str("agentg.event.id") == id })
		if err != nil {
			t.Fatalf("no span for event %s: %v", id, err)
		}
		return sp
	}
	callSpan, reqSpan := span(call.str("id")), span(req.str("id"))
	if callSpan.Name != "tools/call fetch" || callSpan.Attrs["gen_ai.tool.name"] != "fetch" {
		t.Errorf("tool span %q: %v", callSpan.Name, callSpan.Attrs)
	}
	if reqSpan.Parent != callSpan.SpanID || reqSpan.TraceID != callSpan.TraceID {
		t.Errorf("the tool's request: parent %s trace %s; want the call's span %s in trace %s",
			reqSpan.Parent, reqSpan.TraceID, callSpan.SpanID, callSpan.TraceID)
	}
	if reqSpan.Name != "GET" || reqSpan.Attrs["url.path"] != "/traced" || reqSpan.Attrs["agentg.agent"] != "server:files" {
		t.Errorf("request span %q: %v", reqSpan.Name, reqSpan.Attrs)
	}
	// The request ended inside the call: the span nests in time too.
	if reqSpan.Start.Before(callSpan.Start) || reqSpan.End.After(callSpan.End) {
		t.Errorf("request span %s–%s outside the call's %s–%s", reqSpan.Start, reqSpan.End, callSpan.Start, callSpan.End)
	}
	if strings.Contains(e.log.String(), childSecret) {
		t.Errorf("the child's secret is in the log")
	}
}

// A collector that accepts connections and never answers: requests
// through agentg complete at once, their events are logged, and the
// spans agentg could not hand over are counted as dropped while the
// collector still hangs.
func TestOTLPDeadCollector(t *testing.T) {
	recv := testenv.StartOTLPReceiver(true)
	defer recv.Close()
	var hits atomic.Int64
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	})})
	defer up.Close()
	testenv.Secrets(t, otelHeaderToken)
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: t.TempDir(), Policy: otelPolicy(),
		Args: []string{"--reload-interval", "0", "--shutdown-timeout", "2s", "--otlp-endpoint", recv.Endpoint(), "--otlp-queue", "4",
			"--otlp-header", "Authorization=Bearer " + otelHeaderToken}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pu := a.URL()
	pu.User = url.UserPassword("load", "x")
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	get := func(path string) time.Duration {
		t.Helper()
		start := time.Now()
		resp, err := hc.Get("http://plain.test:" + up.Port + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, b)
		}
		return time.Since(start)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first export reaches the receiver and hangs there.
	t0 := time.Now()
	get("/first")
	for recv.Requests() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no export reached the receiver")
		case <-time.After(10 * time.Millisecond):
		}
	}
	// With the exporter stuck, 40 more requests: each as quick as ever
	// (an export waits up to 10s; a request waiting on it would too).
	var slowest time.Duration
	for i := range 40 {
		slowest = max(slowest, get("/r"+strconv.Itoa(i)))
	}
	t.Logf("slowest %s, since start %s", slowest, time.Since(t0))
	if slowest > 2*time.Second {
		t.Errorf("the slowest request took %s while the collector hung", slowest)
	}
	if _, err := a.WaitEvent(ctx, func(e map[string]any) bool { return e["kind"] == "http" && e["path"] == "/r39" }); err != nil {
		t.Fatalf("the last request's event: %v", err)
	}
	if hits.Load() != 41 {
		t.Errorf("the upstream saw %d requests, want 41", hits.Load())
	}
	t.Logf("event seen at %s", time.Since(t0))
	// Counted while the collector still hangs: no export of it has been
	// answered (Release is deferred).
	if n := otelMetric(t, a, "agentg_otlp_dropped_spans_total"); n < 40-4 {
		t.Errorf("agentg_otlp_dropped_spans_total = %v with a queue of 4 and 40 events behind a hung export, want at least 36", n)
	}
}

// otelMetric reads one counter from agentg's /metrics.
func otelMetric(t *testing.T, a *testenv.Agentg, name string) float64 {
	t.Helper()
	code, body, err := a.AdminGet("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	m := regexp.MustCompile(`(?m)^` + name + ` ([0-9.e+]+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// --otlp-endpoint naming agentg's own proxy listener: agentg never sends
// its exports to itself (each would be a request with its own event to
// export); the export fails, is counted and said, and no request of the
// export reaches the proxy.
func TestOTLPNotToItself(t *testing.T) {
	addr, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})})
	defer up.Close()
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: t.TempDir(), Policy: otelPolicy(), Listen: addr,
		Args: []string{"--reload-interval", "0", "--shutdown-timeout", "2s", "--otlp-endpoint", "http://" + addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pu := a.URL()
	pu.User = url.UserPassword("self", "x")
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := hc.Get("http://plain.test:" + up.Port + "/marker")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for otelMetric(t, a, "agentg_otlp_dropped_spans_total") < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("the export to agentg's own address was not counted as dropped")
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The refusal is said (on the log, after the export was tried); an
	// export that had reached the proxy would have its event before it.
	var logText string
	for !strings.Contains(logText, "own addresses") {
		b, _ := os.ReadFile(a.LogFile)
		logText = string(b)
		select {
		case <-ctx.Done():
			t.Fatalf("the refused export is not said in the log:\n%s", logText)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if strings.Contains(logText, "/v1/traces") && strings.Contains(logText, `"kind":"http"`) {
		for _, line := range strings.Split(logText, "\n") {
			if strings.Contains(line, `"path":"/v1/traces"`) {
				t.Fatalf("an export reached agentg's proxy: %s", line)
			}
		}
	}
	if otelMetric(t, a, "agentg_otlp_exported_spans_total") != 0 {
		t.Fatal("spans were exported to agentg itself")
	}
}
