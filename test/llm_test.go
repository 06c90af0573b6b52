package test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
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

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 18, the model-call path: the providers' own SDKs talk through
// agentg (as HTTPS_PROXY) to loopback servers named as the providers'
// hosts, answering with the fixtures dissect/llm is held to. Each turn is
// one event of kind llm; the SDK gets the very bytes the server sent; a
// models rule refuses in the provider's own error shape, which the SDK
// surfaces as its typed API error.

const (
	llmAPIKey = "sk-llmtest-7f3a9c1e5b-APIKEY"
	// llmHeldKey is the Anthropic key agentg holds and attaches (a
	// credentials binding): the agent sends llmAPIKey, a placeholder.
	llmHeldKey = "sk-ant-held-4c8e2a6f1d-SECRET"
)

func llmPolicy() string {
	return `
default: deny
free_agent_names: true
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [api.openai.com, api.anthropic.com, generativelanguage.googleapis.com]
resolve:
  api.openai.com: [127.0.0.1]
  api.anthropic.com: [127.0.0.1]
  generativelanguage.googleapis.com: [127.0.0.1]
mcp:
  redact:
    - pattern: "Disk \\w+"
      id: disk
llm:
  unparsed: deny
  models:
    - deny: "gpt-3.5*"
      id: no-old-gpt
    - deny: "claude-opus*"
      provider: anthropic
      id: no-opus
    - deny: "gemini-1.0*"
      id: no-gemini-1
    - deny: "*"
      agents: [restricted]
      id: restricted-none
  prices:
    - model: "claude-sonnet-4-5*"
      input: 3
      cached_input: 0.3
      cache_write: 3.75
      output: 15
    - model: "gpt-4o*"
      input: 2.5
      cached_input: 1.25
      output: 10
credentials:
  secrets:
    anthropic: {env: AGENTG_TEST_ANTHROPIC_KEY}
  bindings:
    - id: anthropic-key
      host: api.anthropic.com
      secret: anthropic
      header: {name: X-Api-Key, value: "{{secret}}"}
`
}

// llmUpstream answers as the providers do, from dissect/llm's fixtures,
// and records what it was asked.
type llmUpstream struct {
	mu       sync.Mutex
	seen     []string // "METHOD host path accept-encoding"
	sent     map[string][]byte
	release  chan struct{} // the slow stream waits for it after its first event
	fixtures map[string][]byte
}

func (u *llmUpstream) saw() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

func (u *llmUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.seen = append(u.seen, r.Method+" "+r.Host+" "+r.URL.Path+" "+r.Header.Get("Accept-Encoding"))
	u.mu.Unlock()
	var q struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	json.Unmarshal(body, &q)
	file := ""
	switch {
	case strings.HasSuffix(r.URL.Path, "/marker"):
		io.WriteString(w, "marker")
		return
	case q.Model == "gpt-garbage":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": "x", "choices": [ this is not json`)
		return
	case q.Model == "gpt-gzip-always":
		// An upstream that compresses whatever it was asked.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(u.fixtures["openai_chat.json"])
		zw.Close()
		return
	case q.Model == "gpt-huge":
		// Over the 8 MiB agentg keeps of a whole answer to read it.
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"pad": "`+strings.Repeat("x", 9<<20)+`"}`)
		return
	case q.Model == "gpt-slow":
		u.slowStream(w)
		return
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		file = map[bool]string{false: "openai_chat.json", true: "openai_chat_stream.sse"}[q.Stream]
	case strings.HasSuffix(r.URL.Path, "/responses"):
		file = map[bool]string{false: "openai_responses.json", true: "openai_responses_stream.sse"}[q.Stream]
	case strings.HasSuffix(r.URL.Path, "/v1/messages") && r.Header.Get("X-Api-Key") != llmHeldKey:
		// The held key was not attached: answer as Anthropic does.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
		return
	case strings.HasSuffix(r.URL.Path, "/v1/messages"):
		file = map[bool]string{false: "anthropic.json", true: "anthropic_stream.sse"}[q.Stream]
	case strings.HasSuffix(r.URL.Path, ":generateContent"):
		file = "gemini.json"
	case strings.HasSuffix(r.URL.Path, ":streamGenerateContent"):
		file = "gemini_stream.sse"
	default:
		http.NotFound(w, r)
		return
	}
	b := u.fixtures[file]
	ct := "application/json"
	if strings.HasSuffix(file, ".sse") {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	// As providers do: compress when the client accepts it. agentg asks
	// for identity on model routes, so that it reads the answer as it
	// passes.
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(b)
		zw.Close()
		return
	}
	w.Write(b)
}

// slowStream sends one Chat Completions chunk, then waits until the
// client says it read it, then sends the rest: if agentg held the stream
// back, the client would never read the first chunk.
func (u *llmUpstream) slowStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-slow-1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`+"\n\n")
	w.(http.Flusher).Flush()
	select {
	case <-u.release:
	case <-time.After(20 * time.Second):
		return
	}
	io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-slow-1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}`+"\n\n")
	io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-slow-1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`+"\n\n")
	io.WriteString(w, "data: [DONE]\n\n")
}

// sdkRecorder keeps the answer bodies as the SDK read them.
type sdkRecorder struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	last  bytes.Buffer
	proto int
}

func (r *sdkRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.last.Reset()
	r.proto = resp.ProtoMajor
	r.mu.Unlock()
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(resp.Body, lockedWriter{r}), resp.Body}
	return resp, nil
}

type lockedWriter struct{ r *sdkRecorder }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.last.Write(p)
}

func (r *sdkRecorder) body() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.last.Bytes())
}

func startLLM(t *testing.T) (*testenv.Agentg, *llmUpstream, *testenv.Upstream, func(agent string) (*http.Client, *sdkRecorder)) {
	t.Helper()
	return startLLMWith(t, llmPolicy())
}

func startLLMWith(t *testing.T, policy string) (*testenv.Agentg, *llmUpstream, *testenv.Upstream, func(agent string) (*http.Client, *sdkRecorder)) {
	t.Helper()
	fx := map[string][]byte{}
	for _, f := range []string{"openai_chat.json", "openai_chat_stream.sse", "openai_responses.json", "openai_responses_stream.sse",
		"anthropic.json", "anthropic_stream.sse", "gemini.json", "gemini_stream.sse"} {
		b, err := os.ReadFile(filepath.Join("..", "dissect", "llm", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		fx[f] = b
	}
	u := &llmUpstream{fixtures: fx, release: make(chan struct{})}
	upCA, err := testenv.NewCA("llm upstream root")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := upCA.Leaf([]string{"api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: u})
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	testenv.Secrets(t, llmAPIKey)
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: policy,
		Env:  append(os.Environ(), "AGENTG_TEST_ANTHROPIC_KEY="+llmHeldKey),
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	client := func(agent string) (*http.Client, *sdkRecorder) {
		pu := a.URL()
		pu.User = url.UserPassword(agent, "x")
		// The streamed calls speak HTTP/2 to agentg (as the SDKs' default
		// clients do), the others HTTP/1.1.
		rec := &sdkRecorder{rt: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool},
			ForceAttemptHTTP2: strings.HasSuffix(agent, "-stream")}}
		return &http.Client{Timeout: 30 * time.Second, Transport: rec}, rec
	}
	return a, u, srv, client
}

// llmEventOf waits for the llm event of agent's one call.
func llmEventOf(t *testing.T, a *testenv.Agentg, agent string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ev, err := a.WaitEvent(ctx, func(e map[string]any) bool { return e["kind"] == "llm" && e["agent"] == agent })
	if err != nil {
		t.Fatalf("no llm event for %s: %v", agent, err)
	}
	return ev
}

func num(e map[string]any, k string) float64 {
	f, _ := e[k].(float64)
	return f
}

// llmWant is what a fixture's turn says, written out by hand from the
// fixture (not read by agentg's reader).
type llmWant struct {
	served, stop, tool, args string
	in, out, cached, write   float64
	reasoning                float64
	cost                     float64 // -1: no price
}

func checkLLMEvent(t *testing.T, ev map[string]any, provider, dialect, model string, stream bool, w llmWant) {
	t.Helper()
	str := func(k string) string { s, _ := ev[k].(string); return s }
	if str("decision") != "allow" || str("provider") != provider || str("dialect") != dialect || str("model") != model ||
		str("served_model") != w.served || str("stop_reason") != w.stop {
		t.Errorf("event %v", ev)
	}
	if (ev["stream"] == true) != stream {
		t.Errorf("stream = %v, want %v", ev["stream"], stream)
	}
	for k, v := range map[string]float64{"input_tokens": w.in, "output_tokens": w.out, "cached_tokens": w.cached,
		"cache_write_tokens": w.write, "reasoning_tokens": w.reasoning} {
		if num(ev, k) != v {
			t.Errorf("%s = %v, want %v", k, ev[k], v)
		}
	}
	if w.cost < 0 {
		if _, ok := ev["cost_usd"]; ok {
			t.Errorf("cost_usd %v without a price", ev["cost_usd"])
		}
	} else if math.Abs(num(ev, "cost_usd")-w.cost) > 1e-9 {
		t.Errorf("cost_usd = %v, want %v", ev["cost_usd"], w.cost)
	}
	calls, _ := ev["tool_calls"].([]any)
	if len(calls) != 1 {
		t.Fatalf("tool_calls = %v", ev["tool_calls"])
	}
	c := calls[0].(map[string]any)
	if c["name"] != w.tool {
		t.Errorf("tool call %v, want %s", c, w.tool)
	}
	if w.args != "" && !strings.Contains(c["args"].(string), w.args) {
		t.Errorf("tool call args %q, want them to hold %q", c["args"], w.args)
	}
	if num(ev, "ttft_ms") <= 0 || num(ev, "ttft_ms") > num(ev, "duration_ms") {
		t.Errorf("ttft_ms %v, duration_ms %v", ev["ttft_ms"], ev["duration_ms"])
	}
	if ev["parent"] == nil || ev["rule"] != "llm:default" {
		t.Errorf("parent %v rule %v", ev["parent"], ev["rule"])
	}
}

func TestLLMTurnsThroughSDKs(t *testing.T) {
	a, u, srv, client := startLLM(t)
	ctx := t.Context()
	fixture := func(f string) []byte { return u.fixtures[f] }

	t.Run("openai-chat", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			agent := map[bool]string{false: "oc", true: "oc-stream"}[stream]
			hc, rec := client(agent)
			c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
				oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
			params := openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
			file := "openai_chat.json"
			if stream {
				file = "openai_chat_stream.sse"
				st := c.Chat.Completions.NewStreaming(ctx, params)
				acc := openai.ChatCompletionAccumulator{}
				for st.Next() {
					acc.AddChunk(st.Current())
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
				if acc.Usage.CompletionTokens != 31 {
					t.Errorf("the SDK read usage %+v", acc.Usage)
				}
			} else if _, err := c.Chat.Completions.New(ctx, params); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.body(), fixture(file)) {
				t.Errorf("%s: the SDK got other bytes than the server sent:\n%s", file, rec.body())
			}
			if want := map[bool]int{false: 1, true: 2}[stream]; rec.proto != want {
				t.Errorf("HTTP/%d to agentg, want HTTP/%d", rec.proto, want)
			}
			ev := llmEventOf(t, a, agent)
			if stream {
				checkLLMEvent(t, ev, "openai", "openai-chat", "gpt-4o", true, llmWant{served: "gpt-4o-mini-2024-07-18", stop: "tool_calls",
					tool: "get_weather", in: 82, out: 31, cost: (82*2.5 + 31*10) / 1e6})
			} else {
				checkLLMEvent(t, ev, "openai", "openai-chat", "gpt-4o", false, llmWant{served: "gpt-4o-2024-08-06", stop: "tool_calls",
					tool: "mcp__jira__create_issue", in: 1117, out: 46, cached: 1024, cost: ((1117-1024)*2.5 + 1024*1.25 + 46*10) / 1e6})
			}
		}
	})

	t.Run("openai-responses", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			agent := map[bool]string{false: "or", true: "or-stream"}[stream]
			hc, rec := client(agent)
			c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
				oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
			params := responses.ResponseNewParams{Model: "o4-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}
			file := "openai_responses.json"
			if stream {
				file = "openai_responses_stream.sse"
				st := c.Responses.NewStreaming(ctx, params)
				for st.Next() {
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := c.Responses.New(ctx, params); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.body(), fixture(file)) {
				t.Errorf("%s: the SDK got other bytes than the server sent", file)
			}
			ev := llmEventOf(t, a, agent)
			if stream {
				checkLLMEvent(t, ev, "openai", "openai-responses", "o4-mini", true, llmWant{served: "gpt-4.1-2025-04-14", stop: "completed",
					tool: "search_issues", in: 37, out: 11, cost: -1})
			} else {
				checkLLMEvent(t, ev, "openai", "openai-responses", "o4-mini", false, llmWant{served: "o4-mini-2025-04-16", stop: "completed",
					tool: "get_weather", in: 328, out: 152, cached: 128, reasoning: 128, cost: -1})
			}
		}
	})

	t.Run("anthropic", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			agent := map[bool]string{false: "an", true: "an-stream"}[stream]
			hc, rec := client(agent)
			c := anthropic.NewClient(aopt.WithBaseURL("https://api.anthropic.com:"+srv.Port), aopt.WithAPIKey(llmAPIKey),
				aopt.WithMaxRetries(0), aopt.WithHTTPClient(hc))
			params := anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 1024,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
			file := "anthropic.json"
			if stream {
				file = "anthropic_stream.sse"
				st := c.Messages.NewStreaming(ctx, params)
				var m anthropic.Message
				for st.Next() {
					if err := m.Accumulate(st.Current()); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := c.Messages.New(ctx, params); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.body(), fixture(file)) {
				t.Errorf("%s: the SDK got other bytes than the server sent", file)
			}
			ev := llmEventOf(t, a, agent)
			if stream {
				checkLLMEvent(t, ev, "anthropic", "anthropic-messages", "claude-sonnet-4-5", true, llmWant{served: "claude-sonnet-4-5-20250929",
					stop: "tool_use", tool: "get_weather", in: 472 + 1024, out: 89, cached: 1024,
					cost: (472*3 + 1024*0.3 + 89*15) / 1e6})
			} else {
				// The tool call's arguments name an issue key, which the
				// policy's mcp redact rule hides in the event.
				checkLLMEvent(t, ev, "anthropic", "anthropic-messages", "claude-sonnet-4-5", false, llmWant{served: "claude-sonnet-4-5-20250929",
					stop: "tool_use", tool: "jira_create_issue", args: `[REDACTED:disk]`, in: 472 + 100 + 2048, out: 91, cached: 2048, write: 100,
					cost: (472*3 + 2048*0.3 + 100*3.75 + 91*15) / 1e6})
			}
		}
	})

	t.Run("gemini", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			agent := map[bool]string{false: "ge", true: "ge-stream"}[stream]
			hc, rec := client(agent)
			c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: llmAPIKey, Backend: genai.BackendGeminiAPI, HTTPClient: hc,
				HTTPOptions: genai.HTTPOptions{BaseURL: "https://generativelanguage.googleapis.com:" + srv.Port}})
			if err != nil {
				t.Fatal(err)
			}
			file := "gemini.json"
			if stream {
				file = "gemini_stream.sse"
				for _, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
					if err != nil {
						t.Fatal(err)
					}
				}
			} else if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.body(), fixture(file)) {
				t.Errorf("%s: the SDK got other bytes than the server sent", file)
			}
			ev := llmEventOf(t, a, agent)
			if stream {
				checkLLMEvent(t, ev, "google", "gemini", "gemini-2.5-flash", true, llmWant{served: "gemini-2.5-flash",
					stop: "STOP", tool: "get_forecast", args: "Os", in: 9, out: 20, cost: -1})
			} else {
				checkLLMEvent(t, ev, "google", "gemini", "gemini-2.5-flash", false, llmWant{served: "gemini-2.5-flash",
					stop: "STOP", tool: "calendar_list_events", in: 120, out: 80, cached: 64, reasoning: 50, cost: -1})
			}
		}
	})

	// agentg asked every upstream for identity: the upstream compresses
	// for a client that accepts gzip, and the SDKs' transports do.
	for _, s := range u.saw() {
		if !strings.HasSuffix(s, " identity") {
			t.Errorf("the upstream was asked %q: want Accept-Encoding identity on model routes", s)
		}
	}

	// The metrics count tokens by kind and cost, by agent, provider and
	// model (the served one).
	ctxw, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		code, body, err := a.AdminGet("/metrics")
		if err != nil || code != 200 {
			t.Fatalf("metrics: %d %v", code, err)
		}
		m := string(body)
		want := []string{
			`agentg_llm_tokens_total{agent="an",kind="cache_write",model="claude-sonnet-4-5-20250929",provider="anthropic"} 100`,
			`agentg_llm_tokens_total{agent="an",kind="input",model="claude-sonnet-4-5-20250929",provider="anthropic"} 2620`,
			`agentg_llm_tokens_total{agent="ge",kind="reasoning",model="gemini-2.5-flash",provider="google"} 50`,
			`agentg_llm_tokens_total{agent="oc-stream",kind="output",model="gpt-4o-mini-2024-07-18",provider="openai"} 31`,
			`agentg_llm_cost_usd_total{agent="an",model="claude-sonnet-4-5-20250929",provider="anthropic"} 0.0037704`,
			`agentg_decisions_total{decision="allow",kind="llm",rule="llm:default"} 8`,
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(m, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if ctxw.Err() != nil {
			t.Fatalf("metrics lack %s:\n%s", missing, grepLines(m, "llm"))
		}
		time.Sleep(50 * time.Millisecond) // the metrics goroutine has not counted the last event yet
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// An upstream that compresses an answer agentg asked to have unencoded:
// the client gets the bytes as sent, and the event says the turn could
// not be read (unparsed: deny records it as denied: the bytes went).
func TestLLMCompressedAnswer(t *testing.T) {
	a, _, srv, client := startLLM(t)
	hc, rec := client("gz")
	c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
		oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
	res, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-gzip-always",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	// Go's transport decoded it for the SDK, as it would have direct.
	if res.Usage.PromptTokens != 1117 || len(rec.body()) == 0 {
		t.Errorf("the SDK read %+v", res.Usage)
	}
	ev := llmEventOf(t, a, "gz")
	if ev["decision"] != "deny" || ev["rule"] != "llm:unparsed" || ev["unparsed"] != "answer is gzip-encoded" || ev["input_tokens"] != nil {
		t.Errorf("event %v", ev)
	}
}

// A models rule refuses in the provider's own error shape: each SDK
// returns its typed API error carrying agentg's message, and the upstream
// never sees the request (the marker it sees next is its next request).
func TestLLMModelsRefusedInProviderShape(t *testing.T) {
	a, u, srv, client := startLLM(t)
	ctx := t.Context()
	marker := func(t *testing.T) {
		t.Helper()
		hc, _ := client("marker")
		resp, err := hc.Post("https://api.openai.com:"+srv.Port+"/marker", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		seen := u.saw()
		if len(seen) == 0 || !strings.Contains(seen[len(seen)-1], "/marker") {
			t.Fatalf("the upstream saw %v after a refused call: want the marker only", seen)
		}
		if len(seen) > 1 && !strings.Contains(seen[len(seen)-2], "/marker") {
			t.Fatalf("the upstream saw %q before the marker: the refused call reached it", seen[len(seen)-2])
		}
	}
	refusedEvent := func(t *testing.T, agent, rule string) {
		t.Helper()
		ev := llmEventOf(t, a, agent)
		if ev["decision"] != "deny" || ev["rule"] != rule || num(ev, "status") != 403 {
			t.Errorf("refusal event %v", ev)
		}
	}

	t.Run("openai", func(t *testing.T) {
		marker(t)
		hc, _ := client("oa-refused")
		c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
			oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-3.5-turbo",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("want *openai.Error, got %T %v", err, err)
		}
		if apiErr.StatusCode != 403 || !strings.Contains(apiErr.Message, "no-old-gpt") || apiErr.Type != "permission_denied" || apiErr.Code != "model_not_allowed" {
			t.Errorf("openai error %d %q %q %q", apiErr.StatusCode, apiErr.Message, apiErr.Type, apiErr.Code)
		}
		refusedEvent(t, "oa-refused", "no-old-gpt")
		marker(t)
	})

	t.Run("anthropic", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			agent := map[bool]string{false: "an-refused", true: "an-refused-stream"}[stream]
			hc, _ := client(agent)
			c := anthropic.NewClient(aopt.WithBaseURL("https://api.anthropic.com:"+srv.Port), aopt.WithAPIKey(llmAPIKey),
				aopt.WithMaxRetries(0), aopt.WithHTTPClient(hc))
			params := anthropic.MessageNewParams{Model: "claude-opus-4-1", MaxTokens: 10,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
			var err error
			if stream {
				st := c.Messages.NewStreaming(ctx, params)
				for st.Next() {
				}
				err = st.Err()
			} else {
				_, err = c.Messages.New(ctx, params)
			}
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("want *anthropic.Error, got %T %v", err, err)
			}
			if apiErr.StatusCode != 403 || !strings.Contains(apiErr.Message, "no-opus") || apiErr.Type() != "permission_error" {
				t.Errorf("anthropic error %d %q %q", apiErr.StatusCode, apiErr.Message, apiErr.Type())
			}
			refusedEvent(t, agent, "no-opus")
		}
		marker(t)
	})

	t.Run("gemini", func(t *testing.T) {
		hc, _ := client("ge-refused")
		c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: llmAPIKey, Backend: genai.BackendGeminiAPI, HTTPClient: hc,
			HTTPOptions: genai.HTTPOptions{BaseURL: "https://generativelanguage.googleapis.com:" + srv.Port}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Models.GenerateContent(ctx, "gemini-1.0-pro", genai.Text("hi"), nil)
		var apiErr genai.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("want genai.APIError, got %T %v", err, err)
		}
		if apiErr.Code != 403 || apiErr.Status != "PERMISSION_DENIED" || !strings.Contains(apiErr.Message, "no-gemini-1") {
			t.Errorf("genai error %+v", apiErr)
		}
		refusedEvent(t, "ge-refused", "no-gemini-1")
		marker(t)
	})

	t.Run("path spellings", func(t *testing.T) {
		// A server that routes without regard to case or a trailing
		// slash must not be reached by a refused model so spelt.
		for i, path := range []string{"/v1/chat/completions/", "/V1/Chat/Completions", "/v1/CHAT/completions/"} {
			agent := "spelt-" + strconv.Itoa(i)
			hc, _ := client(agent)
			resp, err := hc.Post("https://api.openai.com:"+srv.Port+path, "application/json",
				strings.NewReader(`{"model": "gpt-3.5-turbo", "messages": []}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Errorf("%s: %d", path, resp.StatusCode)
			}
			refusedEvent(t, agent, "no-old-gpt")
		}
		marker(t)
	})

	t.Run("agents scope", func(t *testing.T) {
		// The same model another agent just used is refused to the agent
		// a rule scopes.
		hc, _ := client("restricted")
		c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
			oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || !strings.Contains(apiErr.Message, "restricted-none") {
			t.Fatalf("want a 403 naming restricted-none, got %v", err)
		}
		refusedEvent(t, "restricted", "restricted-none")
		marker(t)
	})
}

// With unparsed: deny, a request agentg cannot read is refused before it
// reaches the upstream, and an answer it cannot read (the bytes already
// went) is logged as denied, with the reason.
func TestLLMUnparsed(t *testing.T) {
	a, u, srv, client := startLLM(t)
	hc, _ := client("garbage-req")
	resp, err := hc.Post("https://api.openai.com:"+srv.Port+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model": "gpt-4o", "MODEL": "gpt-3.5-turbo", "messages": []}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var shape struct {
		Error struct{ Message, Type, Code string }
	}
	if resp.StatusCode != 400 || json.Unmarshal(body, &shape) != nil || shape.Error.Type != "invalid_request_error" ||
		!strings.Contains(shape.Error.Message, "llm:unparsed") {
		t.Errorf("unreadable request answered %d %s", resp.StatusCode, body)
	}
	ev := llmEventOf(t, a, "garbage-req")
	if ev["decision"] != "deny" || ev["rule"] != "llm:unparsed" || ev["unparsed"] == nil {
		t.Errorf("unreadable request event %v", ev)
	}
	for _, s := range u.saw() {
		t.Errorf("the upstream saw %q: an unreadable request must not reach it", s)
	}

	hc, rec := client("garbage-answer")
	resp, err = hc.Post("https://api.openai.com:"+srv.Port+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model": "gpt-garbage", "messages": []}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := string(rec.body()); got != `{"id": "x", "choices": [ this is not json` {
		t.Errorf("the client got %q", got)
	}
	ev = llmEventOf(t, a, "garbage-answer")
	if ev["decision"] != "deny" || ev["rule"] != "llm:unparsed" || !strings.Contains(ev["unparsed"].(string), "unreadable") {
		t.Errorf("unreadable answer event %v", ev)
	}

	// An answer over the bound passes whole; the event says why it was
	// not read.
	hc, _ = client("huge-answer")
	resp, err = hc.Post("https://api.openai.com:"+srv.Port+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model": "gpt-huge", "messages": []}`))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != int64(9<<20+len(`{"pad": ""}`)) {
		t.Errorf("the client got %d bytes", n)
	}
	ev = llmEventOf(t, a, "huge-answer")
	if ev["decision"] != "deny" || ev["unparsed"] != "answer over 8 MiB" {
		t.Errorf("huge answer event %v", ev)
	}
}

// The answer streams: the client reads the first event while the upstream
// still waits for the client's word to send the rest, and the turn's time
// to first token is recorded, before its end.
func TestLLMStreamsFirstToken(t *testing.T) {
	a, u, srv, client := startLLM(t)
	hc, _ := client("slow")
	resp, err := hc.Post("https://api.openai.com:"+srv.Port+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model": "gpt-slow", "stream": true, "messages": []}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.Contains(first, `"content":"Hel"`) {
		t.Fatalf("first event %q, %v", first, err)
	}
	close(u.release) // only now does the upstream send the rest
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "[DONE]") {
		t.Fatalf("rest %q, %v", rest, err)
	}
	ev := llmEventOf(t, a, "slow")
	if ev["served_model"] != "gpt-slow-1" || num(ev, "input_tokens") != 5 || num(ev, "output_tokens") != 2 || ev["stop_reason"] != "stop" {
		t.Errorf("event %v", ev)
	}
	if num(ev, "ttft_ms") <= 0 || num(ev, "ttft_ms") >= num(ev, "duration_ms") {
		t.Errorf("ttft_ms %v, duration_ms %v: the first token came before the end", ev["ttft_ms"], ev["duration_ms"])
	}
}

// agentg check names a bad llm key at its file:line, and warns of models
// rules that an unreadable request would step around.
func TestLLMCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("llm:\n  models:\n    - deny: \"gpt-4*\"\n      provider: openai\n  prices:\n    - {model: x, input: 1, output: -2}\n"), 0o600)
	if code, out, _ := testenv.RunAgentg(t, agentgBin, nil, "check", bad); code != 1 || !strings.Contains(out, "bad.yaml:6: bad price") {
		t.Errorf("check of a bad price: %d %s", code, out)
	}
	warn := filepath.Join(dir, "warn.yaml")
	os.WriteFile(warn, []byte("llm:\n  unparsed: report\n  models:\n    - deny: \"gpt-4*\"\n"), 0o600)
	code, out, _ := testenv.RunAgentg(t, agentgBin, nil, "check", warn)
	if !strings.Contains(out, "warn.yaml:2: llm models rules deny, but unparsed is not deny") {
		t.Errorf("check did not warn (%d):\n%s", code, out)
	}
}

// unparsed: report passes an unreadable request, logged as report; the
// section's default: deny refuses a model no rule allows.
func TestLLMReportAndDefaultDeny(t *testing.T) {
	pol := strings.Replace(llmPolicy(), "  unparsed: deny\n", "  unparsed: report\n  default: deny\n", 1)
	pol = strings.Replace(pol, "  models:\n", "  models:\n    - allow: \"gpt-4o\"\n      id: gpt-4o-ok\n", 1)
	a, u, srv, client := startLLMWith(t, pol)

	hc, _ := client("unread")
	resp, err := hc.Post("https://api.openai.com:"+srv.Port+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model": "gpt-4o", "model": "gpt-3.5-turbo", "messages": []}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(u.saw()) != 1 {
		t.Errorf("report: %d, the upstream saw %v", resp.StatusCode, u.saw())
	}
	ev := llmEventOf(t, a, "unread")
	if ev["decision"] != "report" || ev["rule"] != "llm:unparsed" || !strings.Contains(ev["unparsed"].(string), "request") {
		t.Errorf("report event %v", ev)
	}

	hc, _ = client("dflt")
	c := openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
		oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
	_, err = c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "o3",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || !strings.Contains(apiErr.Message, "llm:default") {
		t.Fatalf("default deny: %v", err)
	}
	if ev := llmEventOf(t, a, "dflt"); ev["decision"] != "deny" || ev["rule"] != "llm:default" {
		t.Errorf("default deny event %v", ev)
	}
	hc, _ = client("allowed")
	c = openai.NewClient(oopt.WithBaseURL("https://api.openai.com:"+srv.Port+"/v1"), oopt.WithAPIKey(llmAPIKey),
		oopt.WithMaxRetries(0), oopt.WithHTTPClient(hc))
	if _, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
		t.Fatal(err)
	}
	if ev := llmEventOf(t, a, "allowed"); ev["decision"] != "allow" || ev["rule"] != "gpt-4o-ok" {
		t.Errorf("allowed event %v", ev)
	}
}
