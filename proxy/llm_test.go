package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentg/agentg/dissect/llm"
)

// FuzzTurnWriter: whatever an upstream answers, in whatever pieces, the
// client gets exactly those bytes, and reading the copy never panics.
func FuzzTurnWriter(f *testing.F) {
	f.Add(uint8(0), "text/event-stream", []byte("data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"), uint8(3))
	f.Add(uint8(2), "application/json", []byte(`{"type":"message","model":"m","content":[],"usage":{"input_tokens":1,"output_tokens":2}}`), uint8(0))
	f.Add(uint8(3), "text/event-stream; charset=utf-8", []byte("data: {\"candidates\":[]}\r\n\r\n"), uint8(1))
	f.Add(uint8(1), "application/json", []byte("not json"), uint8(5))
	f.Fuzz(func(t *testing.T, dialect uint8, ct string, body []byte, piece uint8) {
		d := []llm.Dialect{llm.OpenAIChat, llm.OpenAIResponses, llm.AnthropicMessages, llm.Gemini}[int(dialect)%4]
		rec := httptest.NewRecorder()
		tw := &turnWriter{ResponseWriter: rec, c: &llmCall{route: llm.Route{Dialect: d}}}
		tw.Header().Set("Content-Type", ct)
		tw.WriteHeader(http.StatusOK)
		size := int(piece)%17 + 1
		for p := body; len(p) > 0; {
			n := min(size, len(p))
			if w, err := tw.Write(p[:n]); w != n || err != nil {
				t.Fatalf("Write = %d, %v", w, err)
			}
			p = p[n:]
		}
		if !bytes.Equal(rec.Body.Bytes(), body) {
			t.Fatalf("the client got %q, want %q", rec.Body.Bytes(), body)
		}
		tw.turn()
	})
}

func TestProviderErrorShapes(t *testing.T) {
	for _, c := range []struct {
		d      llm.Dialect
		status int
		want   string
	}{
		{llm.OpenAIChat, 403, `{"error":{"code":"model_not_allowed","message":"m \"q\"","param":null,"type":"permission_denied"}}`},
		{llm.OpenAIResponses, 400, `{"error":{"code":"unreadable_request","message":"m \"q\"","param":null,"type":"invalid_request_error"}}`},
		{llm.AnthropicMessages, 403, `{"error":{"message":"m \"q\"","type":"permission_error"},"type":"error"}`},
		{llm.Gemini, 400, `{"error":{"code":400,"message":"m \"q\"","status":"INVALID_ARGUMENT"}}`},
	} {
		if got := string(providerError(c.d, c.status, `m "q"`)); got != c.want {
			t.Errorf("%s %d: %s, want %s", c.d, c.status, got, c.want)
		}
	}
}
