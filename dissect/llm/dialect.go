package llm

import "strings"

// Dialect is a model API's request and answer format.
type Dialect uint8

const (
	Unknown           Dialect = iota
	OpenAIChat                // POST …/chat/completions (OpenAI and compatible servers)
	OpenAIResponses           // POST …/responses
	AnthropicMessages         // POST …/v1/messages
	Gemini                    // POST …/models/MODEL:generateContent or :streamGenerateContent
)

var dialectNames = [...]string{
	Unknown:           "unknown",
	OpenAIChat:        "openai-chat",
	OpenAIResponses:   "openai-responses",
	AnthropicMessages: "anthropic-messages",
	Gemini:            "gemini",
}

// String is the dialect's name as the policy writes it.
func (d Dialect) String() string {
	if int(d) < len(dialectNames) {
		return dialectNames[d]
	}
	return "unknown"
}

// ParseDialect reads a dialect's policy name.
func ParseDialect(s string) (Dialect, bool) {
	for d, n := range dialectNames {
		if d != int(Unknown) && n == s {
			return Dialect(d), true
		}
	}
	return Unknown, false
}

// Route is what a request's path says: its dialect, and for Gemini, whose
// paths name them, the model and whether the answer streams.
type Route struct {
	Dialect Dialect
	Model   string // Gemini: from the path
	Stream  bool   // Gemini: streamGenerateContent
}

// RoutePath names the dialect a POST to path speaks, by the path shapes
// the providers publish (any prefix before them: a gateway's, a version's),
// or Unknown. The path is the decoded path without the query.
func RoutePath(path string) Route {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return Route{Dialect: OpenAIChat}
	case strings.HasSuffix(path, "/responses"):
		return Route{Dialect: OpenAIResponses}
	case strings.HasSuffix(path, "/v1/messages"):
		return Route{Dialect: AnthropicMessages}
	}
	// Gemini: …/models/{model}:{method}, the model possibly tuned
	// ("tunedModels/x") or under a publisher (Vertex AI's
	// …/publishers/google/models/{model}:{method}).
	i := strings.LastIndex(path, "/models/")
	if i < 0 {
		return Route{}
	}
	model, method, ok := strings.Cut(path[i+len("/models/"):], ":")
	if !ok || model == "" || strings.Contains(model, "/") {
		return Route{}
	}
	switch method {
	case "generateContent":
		return Route{Dialect: Gemini, Model: model}
	case "streamGenerateContent":
		return Route{Dialect: Gemini, Model: model, Stream: true}
	}
	return Route{}
}

// DefaultHosts are the providers' own API hosts and the dialects each
// serves, for a policy that names none.
var DefaultHosts = map[string][]Dialect{
	"api.openai.com":                    {OpenAIChat, OpenAIResponses},
	"api.anthropic.com":                 {AnthropicMessages},
	"generativelanguage.googleapis.com": {Gemini},
}
