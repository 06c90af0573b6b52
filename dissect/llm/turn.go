package llm

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxText bounds the assistant text and the reasoning a Turn keeps: they
// are context for the events of the tool calls a turn asks for, not a
// transcript.
const MaxText = 8 << 10

// MaxArguments bounds one tool call's arguments a Turn keeps; a call
// whose arguments are longer keeps none and says so (ToolCall.Truncated).
const MaxArguments = 64 << 10

// Usage is a turn's token counts as the provider reports them. Input
// counts every prompt token, cached ones included; Cached is the part read
// from the provider's prompt cache, CacheWrite the part written to it
// (Anthropic); Reasoning the part of Output spent on reasoning.
type Usage struct {
	Input      int64 `json:"input"`
	Output     int64 `json:"output"`
	Cached     int64 `json:"cached,omitempty"`
	CacheWrite int64 `json:"cache_write,omitempty"`
	Reasoning  int64 `json:"reasoning,omitempty"`
}

// ToolCall is one tool call the model asked for.
type ToolCall struct {
	ID        string         `json:"id,omitempty"`
	Name      string         `json:"name"`
	Arguments jsontext.Value `json:"arguments,omitempty"` // a JSON object, as the model wrote it
	Truncated bool           `json:"truncated,omitempty"` // arguments over MaxArguments, not kept
}

// Turn is what one model answer says.
type Turn struct {
	Dialect    Dialect    `json:"-"`
	Model      string     `json:"model,omitempty"` // the model that served, as the answer names it
	Usage      Usage      `json:"usage"`
	HasUsage   bool       `json:"-"` // the answer reported usage (a stream may not)
	StopReason string     `json:"stop_reason,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	Text       string     `json:"text,omitempty"`      // the assistant's text, up to MaxText
	Reasoning  string     `json:"reasoning,omitempty"` // visible reasoning or its summary, up to MaxText
	Streamed   bool       `json:"streamed,omitempty"`
}

// ErrUnreadable wraps every failure to read a request or an answer.
var ErrUnreadable = errors.New("llm: unreadable")

func unreadable(d Dialect, what string, err error) error {
	if err == nil {
		return fmt.Errorf("%w %s %s", ErrUnreadable, d, what)
	}
	return fmt.Errorf("%w %s %s: %v", ErrUnreadable, d, what, err)
}

// addText appends s to *dst up to MaxText bytes, cut on a rune boundary.
func addText(dst *string, s string) {
	room := MaxText - len(*dst)
	if room <= 0 || s == "" {
		return
	}
	if len(s) > room {
		// s[room] is the first byte left out: while it continues a rune,
		// that rune would be cut, so leave it out whole.
		for room > 0 && !utf8.RuneStart(s[room]) {
			room--
		}
		s = s[:room]
	}
	*dst += s
}

// setArgs keeps a tool call's arguments, or marks them too long.
func (c *ToolCall) setArgs(raw []byte) {
	if len(raw) > MaxArguments {
		c.Arguments, c.Truncated = nil, true
		return
	}
	c.Arguments = append(jsontext.Value(nil), raw...)
}
