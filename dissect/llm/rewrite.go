package llm

import (
	"errors"
	"fmt"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The tool-use guard's side in this package: rewriting a model's answer
// so that a tool call the policy denies is struck from it before the
// agent reads it. This package decides nothing: the caller's Decider
// answers for each call (the proxy asks the mcp tool rules through
// rules), and the rewriting keeps the answer valid for the provider's own
// SDK: a struck call is replaced by a short text part (Verdict.Note) in
// the dialect's own shape, and a stop reason that said "tool calls" says
// the turn ended once none remain (OpenAI Chat finish_reason tool_calls →
// stop, Anthropic stop_reason tool_use → end_turn; Responses and Gemini
// carry no such reason).
//
// An answer in which nothing is struck is handed on byte for byte. What
// cannot be read is an error (ErrUnreadable): the caller fails closed.

// Verdict is the Decider's answer about one tool call.
type Verdict struct {
	// Strike removes the call from the answer; Note is the text put in
	// its place (it names the rule).
	Strike bool
	Note   string
}

// Decider decides one tool call of an answer. It may block (an approval
// holding the call); a streamed answer waits for it, the call's own
// chunks held meanwhile.
type Decider func(ToolCall) Verdict

// maxHeldArgs bounds the arguments of one call kept to decide it; a call
// whose arguments are longer cannot be checked and is struck.
const maxHeldArgs = MaxEvent

// UncheckedNote is the note of a call struck because it could not be
// checked whole: its arguments too long to hold, or the stream ended
// before the call did.
const UncheckedNote = "[agentg: a tool call was removed: it could not be checked whole]"

// decideCall asks d about c, striking unasked what cannot be checked
// whole (Truncated).
func decideCall(d Decider, c ToolCall) Verdict {
	if c.Truncated {
		return Verdict{Strike: true, Note: UncheckedNote}
	}
	return d(c)
}

// RewriteAnswer applies decide to every tool call of a whole (not
// streamed) answer of dialect d: out is body itself when nothing was
// struck, else the answer rewritten.
func RewriteAnswer(d Dialect, body []byte, decide Decider) (out []byte, changed bool, err error) {
	o, err := parseObj(body)
	if err != nil {
		return nil, false, unreadable(d, "answer", err)
	}
	switch d {
	case OpenAIChat:
		changed, err = rewriteChatAnswer(o, decide)
	case OpenAIResponses:
		changed, err = rewriteRespResponse(o, decide, nil)
	case AnthropicMessages:
		changed, err = rewriteAnthAnswer(o, decide)
	case Gemini:
		changed, err = rewriteGemini(o, decide)
	default:
		return nil, false, unreadable(d, "answer", nil)
	}
	if err != nil {
		return nil, false, unreadable(d, "answer", err)
	}
	if !changed {
		return body, false, nil
	}
	return o.marshal(), true, nil
}

// obj is a JSON object read for rewriting: its members as written. It
// refuses what a peer could read apart from it: a duplicate name (json
// v2's default), and, on lookup, a name that differs from the one looked
// up only in case (Go SDKs match member names without regard to case).
type obj map[string]jsontext.Value

var errFoldedName = errors.New("member name differs from the dialect's only in case")

func parseObj(b []byte) (obj, error) {
	var o obj
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

// raw returns the member name's value (nil when absent or null).
func (o obj) raw(name string) (jsontext.Value, error) {
	for k := range o {
		if len(k) == len(name) && k != name && strings.EqualFold(k, name) {
			return nil, fmt.Errorf("%w: %q", errFoldedName, k)
		}
	}
	v := o[name]
	if string(v) == "null" {
		return nil, nil
	}
	return v, nil
}

// obj returns member name as an object (nil when absent or null).
func (o obj) obj(name string) (obj, error) {
	v, err := o.raw(name)
	if v == nil || err != nil {
		return nil, err
	}
	return parseObj(v)
}

// list returns member name as an array of objects.
func (o obj) list(name string) ([]obj, error) {
	v, err := o.raw(name)
	if v == nil || err != nil {
		return nil, err
	}
	var items []jsontext.Value
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := make([]obj, len(items))
	for i, it := range items {
		if out[i], err = parseObj(it); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
		}
	}
	return out, nil
}

// str returns member name as a string ("" when absent or null).
func (o obj) str(name string) (string, error) {
	v, err := o.raw(name)
	if v == nil || err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// num returns member name as an integer (0 when absent).
func (o obj) num(name string) (int, error) {
	v, err := o.raw(name)
	if v == nil || err != nil {
		return 0, err
	}
	var n int
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

// set sets member name to v, marshalled.
func (o obj) set(name string, v any) {
	b, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		panic("llm: marshal of a rewritten member: " + err.Error()) // strings, numbers, objs: cannot fail
	}
	o[name] = b
}

// marshal writes o with its members in a fixed order, so one answer is
// always rewritten to the same bytes.
func (o obj) marshal() []byte {
	b, err := json.Marshal(o, json.Deterministic(true))
	if err != nil {
		panic("llm: marshal of a rewritten answer: " + err.Error()) // values read as valid JSON: cannot fail
	}
	return b
}

// objs is a list of objects as a value to set.
func objs(l []obj) []obj { return l }

// setHeldArgs keeps a call's arguments to decide it, up to maxHeldArgs
// (more than a Turn keeps: a call is decided on all its arguments).
func (c *ToolCall) setHeldArgs(raw []byte) {
	if len(raw) > maxHeldArgs {
		c.Arguments, c.Truncated = nil, true
		return
	}
	c.Arguments = append(jsontext.Value(nil), raw...)
}
