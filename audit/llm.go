package audit

import (
	"time"

	"github.com/rs/zerolog"
)

// LLM is what an event about one model turn (kind "llm") adds: the
// exchange's request and what its answer said. The event's Duration is
// the request's start to the answer's end; Decision and Rule are the
// llm.models decision (or the unparsed setting's, when Unparsed says why
// the exchange could not be read).
type LLM struct {
	Provider    string // the policy's name for the provider (from the host)
	Dialect     string // "openai-chat", "openai-responses", "anthropic-messages", "gemini"
	Model       string // requested
	ServedModel string // as the answer names it
	Stream      bool   // the answer was an event stream

	InputTokens      int64 // every prompt token, cached ones included
	OutputTokens     int64 // reasoning ones included
	CachedTokens     int64 // read from the provider's prompt cache
	CacheWriteTokens int64 // written to it (Anthropic)
	ReasoningTokens  int64
	NoUsage          bool // the answer reported no usage

	TTFT       time.Duration // request start to the first output read (streamed answers)
	StopReason string
	ToolCalls  []LLMToolCall
	// Cost is the turn's cost in USD from the policy's price table;
	// Priced says a price applied (a cost of 0 may be real).
	Cost   float64
	Priced bool
	// Unparsed says why the request or the answer could not be read;
	// "" when both were.
	Unparsed string
	// Redactions are the ids of the redact rules whose matches were
	// replaced in the request before it went to the provider.
	Redactions []string
}

// LLMToolCall is one tool call a model asked for: its arguments after the
// policy's redaction, cut to MaxArgs bytes.
type LLMToolCall struct {
	ID         string   `json:"id,omitempty"`
	Name       string   `json:"name"`
	Args       string   `json:"args,omitempty"`
	Truncated  bool     `json:"truncated,omitempty"`
	Redactions []string `json:"redactions,omitempty"`
}

// MaxToolCalls bounds the tool calls one event lists.
const MaxToolCalls = 64

func (m *LLM) log(ev *zerolog.Event) {
	optStr(ev, "provider", m.Provider)
	optStr(ev, "dialect", m.Dialect)
	optStr(ev, "model", m.Model)
	optStr(ev, "served_model", m.ServedModel)
	if m.Stream {
		ev.Bool("stream", true)
	}
	if !m.NoUsage {
		ev.Int64("input_tokens", m.InputTokens).Int64("output_tokens", m.OutputTokens)
		if m.CachedTokens != 0 {
			ev.Int64("cached_tokens", m.CachedTokens)
		}
		if m.CacheWriteTokens != 0 {
			ev.Int64("cache_write_tokens", m.CacheWriteTokens)
		}
		if m.ReasoningTokens != 0 {
			ev.Int64("reasoning_tokens", m.ReasoningTokens)
		}
	}
	if m.TTFT > 0 {
		ev.Float64("ttft_ms", float64(m.TTFT.Microseconds())/1000)
	}
	optStr(ev, "stop_reason", m.StopReason)
	if n := len(m.ToolCalls); n > 0 {
		arr := zerolog.Arr()
		for _, c := range m.ToolCalls[:min(n, MaxToolCalls)] {
			d := zerolog.Dict().Str("name", c.Name)
			if c.ID != "" {
				d.Str("id", c.ID)
			}
			if c.Args != "" {
				d.Str("args", c.Args[:min(len(c.Args), MaxArgs)])
			}
			if c.Truncated {
				d.Bool("truncated", true)
			}
			if len(c.Redactions) > 0 {
				d.Strs("redactions", c.Redactions)
			}
			arr.Dict(d)
		}
		ev.Array("tool_calls", arr)
	}
	if m.Priced {
		ev.Float64("cost_usd", m.Cost)
	}
	optStr(ev, "unparsed", m.Unparsed)
	if len(m.Redactions) > 0 {
		ev.Strs("redactions", m.Redactions)
	}
}
