package proxy

import (
	"encoding/json"
	"net/http"

	"github.com/agentg/agentg/dissect/llm"
)

// providerError is a refusal's body in the error shape of the provider
// whose dialect the request spoke, so that the provider's SDK reads it as
// an API error (its typed error, with the message) rather than failing to
// parse it:
//   - OpenAI (Chat, Responses, compatible servers):
//     {"error":{"message","type","param","code"}}
//   - Anthropic: {"type":"error","error":{"type","message"}}
//   - Gemini (Google's RPC status): {"error":{"code","message","status"}}
func providerError(d llm.Dialect, status int, msg string) []byte {
	var v any
	switch d {
	case llm.AnthropicMessages:
		typ := "permission_error"
		if status == http.StatusBadRequest {
			typ = "invalid_request_error"
		}
		v = map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}
	case llm.Gemini:
		st := "PERMISSION_DENIED"
		if status == http.StatusBadRequest {
			st = "INVALID_ARGUMENT"
		}
		v = map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st}}
	default:
		typ, code := "permission_denied", "model_not_allowed"
		if status == http.StatusBadRequest {
			typ, code = "invalid_request_error", "unreadable_request"
		}
		v = map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}}
	}
	b, _ := json.Marshal(v) // maps of strings and ints: cannot fail
	return b
}
