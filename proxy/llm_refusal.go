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
//
// A 429 (an llm quota) takes each provider's rate-limit type:
// OpenAI code rate_limit_exceeded, Anthropic rate_limit_error, Google
// RESOURCE_EXHAUSTED.
func providerError(d llm.Dialect, status int, msg string) []byte {
	var v any
	switch d {
	case llm.AnthropicMessages:
		typ := "permission_error"
		switch status {
		case http.StatusBadRequest:
			typ = "invalid_request_error"
		case http.StatusTooManyRequests:
			typ = "rate_limit_error"
		}
		v = map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}
	case llm.Gemini:
		st := "PERMISSION_DENIED"
		switch status {
		case http.StatusBadRequest:
			st = "INVALID_ARGUMENT"
		case http.StatusTooManyRequests:
			st = "RESOURCE_EXHAUSTED"
		}
		v = map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st}}
	default:
		typ, code := "permission_denied", "model_not_allowed"
		switch status {
		case http.StatusBadRequest:
			typ, code = "invalid_request_error", "unreadable_request"
		case http.StatusTooManyRequests:
			typ, code = "tokens", "rate_limit_exceeded"
		}
		v = map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}}
	}
	b, _ := json.Marshal(v) // maps of strings and ints: cannot fail
	return b
}
