package llm

import (
	json "github.com/go-json-experiment/json"
)

// strict reads member names case-insensitively, so that names differing
// only in case are duplicates (refused), as they would be read apart.
var strict = json.MatchCaseInsensitiveNames(true)

// Request is what a model request asks for.
type Request struct {
	Dialect Dialect
	Model   string   // requested
	Stream  bool     // the answer will stream (SSE)
	Tools   []string // names of the tools the request offers the model
}

// ParseRequest reads a request body of the route's dialect (RoutePath).
// It reads only what it reports; the rest of the body is the provider's
// business. Where the servers that speak a dialect would read one body
// differently, it is unreadable, so that a policy on the model cannot be
// told one model while the server serves another: two members whose
// names differ only in case ("model" and "MODEL": Python servers read
// the first, Go ones such as Ollama's the last), a duplicate name,
// invalid UTF-8, trailing data.
func ParseRequest(rt Route, body []byte) (Request, error) {
	q := Request{Dialect: rt.Dialect, Model: rt.Model, Stream: rt.Stream}
	switch rt.Dialect {
	case OpenAIChat:
		var b struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
			Tools  []struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
		}
		if err := json.Unmarshal(body, &b, strict); err != nil {
			return q, unreadable(rt.Dialect, "request", err)
		}
		q.Model, q.Stream = b.Model, b.Stream
		for _, t := range b.Tools {
			q.Tools = append(q.Tools, t.Function.Name)
		}
	case OpenAIResponses, AnthropicMessages:
		// Responses tools are flat ({"type":"function","name":…}); so
		// are Anthropic's ({"name":…,"input_schema":…}).
		var b struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
			Tools  []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		if err := json.Unmarshal(body, &b, strict); err != nil {
			return q, unreadable(rt.Dialect, "request", err)
		}
		q.Model, q.Stream = b.Model, b.Stream
		for _, t := range b.Tools {
			if t.Name != "" {
				q.Tools = append(q.Tools, t.Name)
			}
		}
	case Gemini:
		// Gemini reads its JSON as protobuf JSON, which takes a field by
		// its lowerCamel name and by its proto name alike.
		type decls []struct {
			Name string `json:"name"`
		}
		var b struct {
			Tools []struct {
				Camel decls `json:"functionDeclarations"`
				Snake decls `json:"function_declarations"`
			} `json:"tools"`
		}
		if err := json.Unmarshal(body, &b, strict); err != nil {
			return q, unreadable(rt.Dialect, "request", err)
		}
		for _, t := range b.Tools {
			for _, f := range append(t.Camel, t.Snake...) {
				q.Tools = append(q.Tools, f.Name)
			}
		}
	default:
		return q, unreadable(rt.Dialect, "request", nil)
	}
	if q.Model == "" {
		return q, unreadable(rt.Dialect, "request: no model", nil)
	}
	return q, nil
}
