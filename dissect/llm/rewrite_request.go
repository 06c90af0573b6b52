package llm

import (
	"bytes"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Rewriting a request's conversation, for the redaction rules on the way
// to the provider: the proxy replaces what a rule matches in the messages
// an agent sends before they reach the model. Only the members that carry
// the conversation are handed over (contentMembers); the model's name,
// the tools offered and every other member go as they came, so the
// request is the same request to the provider's own types.

// contentMembers are, per dialect, the top-level members of a request
// that carry the conversation: what the agent and its tools said, and
// the system instructions.
var contentMembers = [...][]string{
	OpenAIChat:        {"messages"},
	OpenAIResponses:   {"input", "instructions"},
	AnthropicMessages: {"messages", "system"},
	// Gemini reads protobuf JSON: a field by its lowerCamel name or its
	// proto name.
	Gemini: {"contents", "systemInstruction", "system_instruction"},
}

// RewriteContent returns body with the value of each of its top-level
// members that carry the conversation replaced by what f returns for it,
// and whether any was replaced; every other byte is kept. Names are
// matched without regard to case: a server that reads "Messages" as
// "messages" (Go's encoding/json does) must not be sent one unread. body
// must be one JSON object, as ParseRequest read it; an error from f, or
// a body that is not one, is returned.
func RewriteContent(d Dialect, body []byte, f func(jsontext.Value) (jsontext.Value, error)) ([]byte, bool, error) {
	if int(d) >= len(contentMembers) || contentMembers[d] == nil {
		return body, false, unreadable(d, "request", nil)
	}
	names := contentMembers[d]
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(false))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return body, false, unreadable(d, "request: not a JSON object", err)
	}
	var out []byte
	last := 0 // body[last:] is still to be copied
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return body, false, unreadable(d, "request", err)
		}
		content := isContent(names, tok.String()) // before ReadValue voids tok
		v, err := dec.ReadValue()
		if err != nil {
			return body, false, unreadable(d, "request", err)
		}
		if !content {
			continue
		}
		nv, err := f(v)
		if err != nil {
			return body, false, err
		}
		if bytes.Equal(nv, v) {
			continue
		}
		end := int(dec.InputOffset())
		start := end - len(v)
		out = append(append(out, body[last:start]...), nv...)
		last = end
	}
	if _, err := dec.ReadToken(); err != nil {
		return body, false, unreadable(d, "request", err)
	}
	if len(bytes.Trim(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return body, false, unreadable(d, "request: trailing data", nil)
	}
	if out == nil {
		return body, false, nil
	}
	return append(out, body[last:]...), true, nil
}

func isContent(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
