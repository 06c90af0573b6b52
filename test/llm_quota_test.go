package test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"google.golang.org/genai"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 18: token and cost quotas on model calls (llm.quotas), through
// the providers' SDKs; the policy and the loopback providers are
// llm_guard_test.go's and llm_test.go's.

// headerRecorder keeps the last answer's headers.
type headerRecorder struct {
	rt http.RoundTripper
	mu sync.Mutex
	h  http.Header
}

func (r *headerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.h = resp.Header.Clone()
		r.mu.Unlock()
	}
	return resp, err
}

func (r *headerRecorder) retryAfter() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h.Get("Retry-After")
}

// Token and cost quotas: the call after the quota is spent is refused
// with the SDK's typed rate-limit error and Retry-After, and the
// provider never sees it: the next call it sees is another agent's,
// made after the refusal.
func TestLLMQuotas(t *testing.T) {
	a, u, srv, client := startLLMWith(t, llmGuardPolicy())
	testenv.Secrets(t, llmHeldKey)
	ctx := t.Context()
	chat := openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	anth := anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	quotaClient := func(agent string) (*http.Client, *headerRecorder) {
		hc, _ := client(agent)
		hr := &headerRecorder{rt: hc.Transport}
		hc.Transport = hr
		return hc, hr
	}
	// notSeen: the upstream's next request after the refusal is a call
	// by an agent no quota covers.
	notSeen := func(t *testing.T, before int) {
		t.Helper()
		if n := len(u.saw()); n != before {
			t.Fatalf("the upstream saw %d requests, want %d: the refused call reached it", n, before)
		}
		hc, _ := client("free")
		if _, err := openaiClient(srv, hc).Chat.Completions.New(ctx, chat); err != nil {
			t.Fatal(err)
		}
		if n := len(u.saw()); n != before+1 {
			t.Fatalf("the upstream saw %d requests, want %d", n, before+1)
		}
	}
	refused := func(t *testing.T, agent, rule string, hr *headerRecorder) {
		t.Helper()
		ev := llmEventOf(t, a, agent)
		for ev["decision"] == "allow" {
			// The first call's event: the refusal's comes next.
			ctxw, cancel := context.WithTimeout(ctx, 15*time.Second)
			var err error
			ev, err = a.WaitEvent(ctxw, func(e map[string]any) bool {
				return e["kind"] == "llm" && e["agent"] == agent && e["decision"] == "deny"
			})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
		if ev["rule"] != rule || num(ev, "status") != 429 {
			t.Errorf("refusal event %v", ev)
		}
		if ra := hr.retryAfter(); ra == "" || ra == "0" {
			t.Errorf("Retry-After %q", ra)
		}
	}

	t.Run("openai", func(t *testing.T) {
		hc, hr := quotaClient("quota-oa")
		c := openaiClient(srv, hc)
		if _, err := c.Chat.Completions.New(ctx, chat); err != nil {
			t.Fatal(err) // 1163 tokens: the 100/h quota is spent
		}
		before := len(u.saw())
		_, err := c.Chat.Completions.New(ctx, chat)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || !strings.Contains(apiErr.Message, "q-tokens") {
			t.Fatalf("want a 429 *openai.Error naming q-tokens, got %T %v", err, err)
		}
		refused(t, "quota-oa", "q-tokens", hr)
		notSeen(t, before)
	})

	t.Run("anthropic", func(t *testing.T) {
		hc, hr := quotaClient("quota-an")
		c := anthropicClient(srv, hc)
		if _, err := c.Messages.New(ctx, anth); err != nil {
			t.Fatal(err)
		}
		before := len(u.saw())
		st := c.Messages.NewStreaming(ctx, anth)
		for st.Next() {
		}
		var apiErr *anthropic.Error
		if err := st.Err(); !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type() != "rate_limit_error" {
			t.Fatalf("want a 429 rate_limit_error *anthropic.Error, got %T %v", err, err)
		}
		refused(t, "quota-an", "q-tokens", hr)
		notSeen(t, before)
	})

	t.Run("gemini", func(t *testing.T) {
		hc, hr := quotaClient("quota-ge")
		c := geminiClient(t, srv, hc)
		if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil); err != nil {
			t.Fatal(err)
		}
		before := len(u.saw())
		_, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
		var apiErr genai.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != 429 || apiErr.Status != "RESOURCE_EXHAUSTED" {
			t.Fatalf("want a 429 RESOURCE_EXHAUSTED genai.APIError, got %T %v", err, err)
		}
		refused(t, "quota-ge", "q-tokens", hr)
		notSeen(t, before)
	})

	t.Run("report", func(t *testing.T) {
		// A quota in report mode logs the call past it and lets it go.
		hc, _ := quotaClient("quota-report")
		c := openaiClient(srv, hc)
		for i := 0; i < 2; i++ {
			if _, err := c.Chat.Completions.New(ctx, chat); err != nil {
				t.Fatal(err)
			}
		}
		ctxw, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		ev, err := a.WaitEvent(ctxw, func(e map[string]any) bool {
			return e["kind"] == "llm" && e["agent"] == "quota-report" && e["decision"] == "report"
		})
		if err != nil || ev["rule"] != "q-report" || num(ev, "status") != 200 {
			t.Errorf("report event %v %v", ev, err)
		}
	})

	t.Run("cost", func(t *testing.T) {
		// gpt-4o at 2.5/10 USD per million: the fixture's turn costs
		// 0.00104 USD, over the 0.001/d quota.
		hc, hr := quotaClient("quota-cost")
		c := openaiClient(srv, hc)
		if _, err := c.Chat.Completions.New(ctx, chat); err != nil {
			t.Fatal(err)
		}
		before := len(u.saw())
		_, err := c.Chat.Completions.New(ctx, chat)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.Message, "cost USD") {
			t.Fatalf("want a 429 *openai.Error on cost, got %T %v", err, err)
		}
		refused(t, "quota-cost", "q-cost", hr)
		notSeen(t, before)
		// A model the quota does not cover is not refused.
		if _, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-5",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
			t.Errorf("a model outside the quota: %v", err)
		}
	})
}
