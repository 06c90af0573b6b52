package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLLMFields(t *testing.T) {
	long := strings.Repeat("a", MaxArgs+100)
	e := &Event{ID: "x-2", Parent: "x-1", Time: time.Unix(0, 0), Kind: "llm", Agent: "coder", Decision: "allow", Rule: "llm:default",
		LLM: &LLM{Provider: "openai", Dialect: "openai-chat", Model: "gpt-4o", ServedModel: "gpt-4o-2024-08-06", Stream: true,
			InputTokens: 1117, OutputTokens: 46, CachedTokens: 1024, ReasoningTokens: 3, TTFT: 1500 * time.Microsecond,
			StopReason: "tool_calls", Cost: 0.0019725, Priced: true,
			ToolCalls: []LLMToolCall{{ID: "c1", Name: "get_weather", Args: `{"city":"[REDACTED:r]"}`, Redactions: []string{"r"}}, {Name: "big", Args: long}}}}
	var got map[string]any
	if err := json.Unmarshal(JSON(e), &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"provider": "openai", "dialect": "openai-chat", "model": "gpt-4o", "served_model": "gpt-4o-2024-08-06",
		"stream": true, "input_tokens": 1117.0, "output_tokens": 46.0, "cached_tokens": 1024.0, "reasoning_tokens": 3.0,
		"ttft_ms": 1.5, "stop_reason": "tool_calls", "cost_usd": 0.0019725} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"cache_write_tokens", "unparsed"} {
		if _, ok := got[k]; ok {
			t.Errorf("zero %s written", k)
		}
	}
	calls := got["tool_calls"].([]any)
	c0, c1 := calls[0].(map[string]any), calls[1].(map[string]any)
	if c0["name"] != "get_weather" || c0["id"] != "c1" || c0["args"] != `{"city":"[REDACTED:r]"}` || c0["redactions"].([]any)[0] != "r" {
		t.Errorf("tool call %v", c0)
	}
	if len(c1["args"].(string)) != MaxArgs {
		t.Errorf("long arguments not cut: %d bytes", len(c1["args"].(string)))
	}

	// No usage: no token counts, not even zeros; no price: no cost.
	e.LLM = &LLM{Provider: "p", NoUsage: true, Unparsed: "answer is gzip-encoded"}
	got = nil
	json.Unmarshal(JSON(e), &got)
	if _, ok := got["input_tokens"]; ok || got["unparsed"] != "answer is gzip-encoded" || got["cost_usd"] != nil {
		t.Errorf("no-usage event %v", got)
	}

	// Subscribers get a copy whose tool calls are their own.
	ev := &Event{Kind: "llm", LLM: &LLM{ToolCalls: []LLMToolCall{{Name: "a"}}}}
	cp := cloneEvent(ev)
	ev.LLM.ToolCalls[0].Name = "b"
	if cp.LLM.ToolCalls[0].Name != "a" || cp.LLM == ev.LLM {
		t.Error("a subscriber's copy shares the tool calls")
	}
}
