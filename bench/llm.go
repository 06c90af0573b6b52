package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The model-call bench (issue 18): what reading model answers costs. Two
// agentg processes run against the same loopback provider (an
// OpenAI-compatible chat completions origin, LLMOrigin) on InterceptHost:
//
//   - intercept: the bench policy alone; the host is intercepted and the
//     exchange forwarded as plain HTTP;
//   - llm: the same policy plus an llm: section binding InterceptHost to
//     openai-chat, so every answer is read as it passes (a copy of each
//     streamed chunk through dissect/llm's SSE reader; a whole answer
//     parsed at its end) and one kind llm event is written per call.
//
// Three workloads, each round run in both processes:
//   - ttft: one client, streamed answers of LLMShortTokens tokens; the time
//     from sending the request to reading the first token's chunk;
//   - stream: LLMStreamTokens-token streamed answers, one chunk (and one
//     flush) per token as providers send them, at the bench concurrency;
//     agentg's CPU (/proc) per 1,000 streamed tokens;
//   - whole: one client, a non-streamed answer of LLMWholeBytes; its p50,
//     each process's calls alternating between two connections, and
//     (reported) back to back on one.

// Sizes of the model-call bench.
const (
	LLMShortTokens  = 16
	LLMStreamTokens = 1000
	LLMWholeBytes   = 100 << 10
	llmModel        = "gpt-bench"
	llmPath         = "/v1/chat/completions"
)

// LLMPolicy is the llm process's section: InterceptHost read as an
// OpenAI-compatible provider.
const LLMPolicy = `llm:
  default_hosts: false
  hosts:
    - host: ` + InterceptHost + `
      dialects: [openai-chat]
      provider: bench
  unparsed: deny
`

// llmChunk is one streamed chunk carrying one token.
var llmChunk = []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"` + llmModel +
	`","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}` + "\n\n")

// llmStreamTail ends a stream of n tokens: the stop chunk, usage, [DONE].
func llmStreamTail(n int) []byte {
	return []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"` + llmModel +
		`","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
		`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"` + llmModel +
		`","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":` + strconv.Itoa(n) + `,"total_tokens":` + strconv.Itoa(n+5) + `}}` + "\n\n" +
		"data: [DONE]\n\n")
}

// llmWhole is the non-streamed answer: LLMWholeBytes in all.
var llmWhole = func() []byte {
	head := `{"id":"chatcmpl-bench","object":"chat.completion","created":1733000000,"model":"` + llmModel +
		`","choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":25600,"total_tokens":25605}}`
	fill := LLMWholeBytes - len(head) - len(tail)
	return []byte(head + strings.Repeat("word ", fill/5) + strings.Repeat("x", fill%5) + tail)
}()

// LLMOrigin answers chat completions as an OpenAI-compatible provider:
// streamed (max_tokens chunks, each flushed) or whole (llmWhole).
func LLMOrigin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != llmPath {
		http.NotFound(w, r)
		return
	}
	var q struct {
		Stream    bool `json:"stream"`
		MaxTokens int  `json:"max_tokens"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&q); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !q.Stream {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(llmWhole)))
		w.Write(llmWhole)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	n := max(q.MaxTokens, 1)
	for range n {
		if _, err := w.Write(llmChunk); err != nil {
			return
		}
		rc.Flush()
	}
	w.Write(llmStreamTail(n))
}

func llmRequest(stream bool, tokens int) []byte {
	if !stream {
		return []byte(`{"model":"` + llmModel + `","messages":[{"role":"user","content":"hi"}]}`)
	}
	return []byte(`{"model":"` + llmModel + `","stream":true,"stream_options":{"include_usage":true},"max_tokens":` +
		strconv.Itoa(tokens) + `,"messages":[{"role":"user","content":"hi"}]}`)
}

// LLMReport is one run of the model-call bench: the median run of each
// workload in each process, and each round's figures.
type LLMReport struct {
	Rounds int `json:"rounds"`

	// TTFT: one client, LLMShortTokens-token streams.
	TTFTIntercept LLMTTFT `json:"ttft_intercept"`
	TTFTLLM       LLMTTFT `json:"ttft_llm"`
	// TTFTAdded is the median over rounds of the median paired
	// difference (target < 1ms); TTFTRuns that difference round by round.
	TTFTAdded time.Duration   `json:"ttft_added_p50_ns"`
	TTFTRuns  []time.Duration `json:"ttft_added_runs_ns"`

	StreamIntercept Result `json:"stream_intercept"`
	StreamLLM       Result `json:"stream_llm"`
	// CPUPer1kTokens is agentg's CPU per 1,000 streamed tokens in each
	// process (reported, no target).
	CPUPer1kIntercept time.Duration `json:"cpu_per_1k_tokens_intercept_ns"`
	CPUPer1kLLM       time.Duration `json:"cpu_per_1k_tokens_llm_ns"`

	WholeIntercept LLMTTFT `json:"whole_intercept"` // percentiles of the whole call
	WholeLLM       LLMTTFT `json:"whole_llm"`
	// WholeRatio is 1 + the median paired difference over intercept's
	// p50 for the LLMWholeBytes answer, the median over rounds (target <
	// 1.05); WholeRuns round by round.
	WholeRatio float64   `json:"whole_p50_ratio"`
	WholeRuns  []float64 `json:"whole_runs"`
	// BackToBack is the same answer with each call on the connection the
	// call before it to the same process used, at once: agentg reads the
	// answer after the client has it, and the connection takes its next
	// request once that reading is done (reported, no target).
	BackToBackIntercept LLMTTFT   `json:"back_to_back_intercept"`
	BackToBackLLM       LLMTTFT   `json:"back_to_back_llm"`
	BackToBackRatio     float64   `json:"back_to_back_p50_ratio"`
	BackToBackRuns      []float64 `json:"back_to_back_runs"`
}

// LLMTTFT is one latency run: its percentiles over Samples requests.
// On the llm process's runs, Added is the median of the paired
// differences (each call less the intercepting process's call made just
// before it): drift on a shared machine moves both calls of a pair alike.
type LLMTTFT struct {
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Added   time.Duration `json:"added_p50_ns,omitempty"`
}

// Met reports whether both targets were met.
func (r LLMReport) Met() bool { return r.TTFTAdded < time.Millisecond && r.WholeRatio < 1.05 }

// RunLLM starts the two processes, checks that the llm one reads the
// answers (an llm event with the streamed usage), and runs the rounds.
func RunLLM(cfg Config, o Options, rounds int) (LLMReport, error) {
	cfg.Squid, cfg.SquidRequired = false, false
	cfg.Origin = http.HandlerFunc(LLMOrigin)
	plain, err := Start(cfg)
	if err != nil {
		return LLMReport{}, fmt.Errorf("starting the intercepting agentg: %w", err)
	}
	defer plain.Close()
	cfg.PolicyExtra = LLMPolicy
	gov, err := Start(cfg)
	if err != nil {
		return LLMReport{}, fmt.Errorf("starting the agentg with the llm section: %w", err)
	}
	defer gov.Close()
	if err := gov.checkLLM(); err != nil {
		return LLMReport{}, err
	}

	sc, _ := ScenarioByName("intercept-keepalive")
	conc := max(o.Concurrency, 1)
	rep := LLMReport{Rounds: max(rounds, 1)}
	var ti, tl, wi, wl, bi, bl []LLMTTFT
	var si, sl []Result
	streamBytes := int64(LLMStreamTokens*len(llmChunk) + len(llmStreamTail(LLMStreamTokens)))
	stream := func(e *Env, name string) Result {
		body := llmRequest(true, LLMStreamTokens)
		return e.measure(name, sc, o, conc, func(ctx context.Context, c *http.Client) (int64, error) {
			return send(ctx, c, http.MethodPost, e.InterceptBase+llmPath, body, streamBytes)
		})
	}
	for range rep.Rounds {
		a, b, err := paired(plain, gov, sc, o, 1, firstTokenOf(llmRequest(true, LLMShortTokens)))
		if err != nil {
			return rep, fmt.Errorf("ttft: %w", err)
		}
		ti, tl = append(ti, a), append(tl, b)
		rep.TTFTRuns = append(rep.TTFTRuns, b.Added)
		a, b, err = paired(plain, gov, sc, o, 2, wholeOf(llmRequest(false, 0)))
		if err != nil {
			return rep, fmt.Errorf("whole answer: %w", err)
		}
		wi, wl = append(wi, a), append(wl, b)
		rep.WholeRuns = append(rep.WholeRuns, 1+div(float64(b.Added), float64(a.P50)))
		a, b, err = paired(plain, gov, sc, o, 1, wholeOf(llmRequest(false, 0)))
		if err != nil {
			return rep, fmt.Errorf("whole answer, back to back: %w", err)
		}
		bi, bl = append(bi, a), append(bl, b)
		rep.BackToBackRuns = append(rep.BackToBackRuns, 1+div(float64(b.Added), float64(a.P50)))

		s1, s2 := stream(plain, "llm-stream-intercept"), stream(gov, "llm-stream-llm")
		for _, r := range []Result{s1, s2} {
			if r.Errors > 0 {
				return rep, fmt.Errorf("%s: %d errors, the first: %s", r.Scenario, r.Errors, r.FirstError)
			}
		}
		si, sl = append(si, s1), append(sl, s2)
	}
	rep.TTFTIntercept, rep.TTFTLLM = medianTTFT(ti), medianTTFT(tl)
	rep.TTFTAdded = medianOf(rep.TTFTRuns)
	rep.StreamIntercept, rep.StreamLLM = medianCPU(si), medianCPU(sl)
	rep.CPUPer1kIntercept = rep.StreamIntercept.ProxyCPUPerRequest() * 1000 / LLMStreamTokens
	rep.CPUPer1kLLM = rep.StreamLLM.ProxyCPUPerRequest() * 1000 / LLMStreamTokens
	rep.WholeIntercept, rep.WholeLLM = medianTTFT(wi), medianTTFT(wl)
	rep.WholeRatio = medianOf(rep.WholeRuns)
	rep.BackToBackIntercept, rep.BackToBackLLM = medianTTFT(bi), medianTTFT(bl)
	rep.BackToBackRatio = medianOf(rep.BackToBackRuns)
	return rep, nil
}

// checkLLM proves the llm process reads what the bench sends: a streamed
// call's event has the streamed usage, a whole one's is parsed.
func (e *Env) checkLLM() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, _ := ScenarioByName("intercept-keepalive")
	c := e.ClientFor(Agentg, sc, 1)
	defer c.CloseIdleConnections()
	for _, stream := range []bool{true, false} {
		want := int64(len(llmWhole))
		if stream {
			want = int64(LLMShortTokens*len(llmChunk) + len(llmStreamTail(LLMShortTokens)))
		}
		if _, err := send(ctx, c, http.MethodPost, e.InterceptBase+llmPath, llmRequest(stream, LLMShortTokens), want); err != nil {
			return fmt.Errorf("the llm process's check call (stream %v): %w", stream, err)
		}
		out := float64(LLMShortTokens)
		if !stream {
			out = 25600
		}
		if _, err := e.Agentg.WaitEvent(ctx, func(ev map[string]any) bool {
			streamed, _ := ev["stream"].(bool)
			return ev["kind"] == "llm" && streamed == stream && ev["output_tokens"] == out && ev["model"] == llmModel
		}); err != nil {
			return fmt.Errorf("no llm event with %v output tokens (stream %v): the bench would not measure the reading: %w", out, stream, err)
		}
	}
	return nil
}

// paired runs one client that alternates a call through a and one
// through b, unmeasured for o.Warmup and then measured for o.Duration:
// the load of a shared machine drifts over seconds, and alternating call
// by call puts both processes under the same drift. Each process gets
// conns keep-alive connections, used in turn. call returns the figure
// timed (the time to the first token, or to the whole answer).
func paired(a, b *Env, sc Scenario, o Options, conns int, call func(context.Context, *http.Client, string) (time.Duration, error)) (LLMTTFT, LLMTTFT, error) {
	var cas, cbs []*http.Client
	for range max(conns, 1) {
		ca, cb := a.ClientFor(Agentg, sc, 1), b.ClientFor(Agentg, sc, 1)
		defer ca.CloseIdleConnections()
		defer cb.CloseIdleConnections()
		cas, cbs = append(cas, ca), append(cbs, cb)
	}
	i := 0
	ctx, cancel := context.WithTimeout(context.Background(), o.Warmup+o.Duration+time.Minute)
	defer cancel()
	var la, lb []time.Duration
	for _, part := range []struct {
		d       time.Duration
		measure bool
	}{{o.Warmup, false}, {o.Duration, true}} {
		end := time.Now().Add(part.d)
		for ; time.Now().Before(end); i++ {
			ca, cb := cas[i%len(cas)], cbs[i%len(cbs)]
			x, err := call(ctx, ca, a.InterceptBase+llmPath)
			if err != nil {
				return LLMTTFT{}, LLMTTFT{}, err
			}
			y, err := call(ctx, cb, b.InterceptBase+llmPath)
			if err != nil {
				return LLMTTFT{}, LLMTTFT{}, err
			}
			if part.measure {
				la, lb = append(la, x), append(lb, y)
			}
		}
	}
	diff := make([]time.Duration, len(la))
	for i := range la {
		diff[i] = lb[i] - la[i]
	}
	slices.Sort(diff)
	ra, rb := latencies(la), latencies(lb)
	rb.Added = percentile(diff, 0.5)
	return ra, rb, nil
}

func latencies(l []time.Duration) LLMTTFT {
	slices.Sort(l)
	return LLMTTFT{Samples: len(l), P50: percentile(l, 0.5), P99: percentile(l, 0.99)}
}

// firstTokenOf is a call timed to its first token.
func firstTokenOf(body []byte) func(context.Context, *http.Client, string) (time.Duration, error) {
	return func(ctx context.Context, c *http.Client, url string) (time.Duration, error) {
		d, _, err := firstToken(ctx, c, url, body)
		return d, err
	}
}

// wholeOf is a call timed to the end of its whole answer.
func wholeOf(body []byte) func(context.Context, *http.Client, string) (time.Duration, error) {
	return func(ctx context.Context, c *http.Client, url string) (time.Duration, error) {
		t0 := time.Now()
		_, err := send(ctx, c, http.MethodPost, url, body, int64(len(llmWhole)))
		return time.Since(t0), err
	}
}

// firstToken posts body and reads the stream: the time to the first
// chunk with a token, and the whole stream's length.
func firstToken(ctx context.Context, c *http.Client, url string, body []byte) (time.Duration, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	var ttft time.Duration
	var n int64
	for {
		line, err := br.ReadSlice('\n')
		n += int64(len(line))
		if ttft == 0 && bytes.Contains(line, []byte(`"content":"tok `)) {
			ttft = time.Since(t0)
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return 0, n, err
		}
	}
	if ttft == 0 {
		return 0, n, fmt.Errorf("POST %s: no token in the stream", url)
	}
	return ttft, n, nil
}

func medianTTFT(rs []LLMTTFT) LLMTTFT {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b LLMTTFT) int { return int(a.P50 - b.P50) })
	return s[(len(s)-1)/2]
}

func medianOf[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		var zero T
		return zero
	}
	return s[(len(s)-1)/2]
}
