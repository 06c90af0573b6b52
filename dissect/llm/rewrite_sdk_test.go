package llm

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oopt "github.com/openai/openai-go/v3/option"
)

// serveBytes answers every request with body, as an event stream.
func serveBytes(t *testing.T, body []byte) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// Two calls in one Chat stream, the first struck: openai-go's own
// accumulator must see one call, at index 0 (no hole where the struck
// one was), with its arguments whole, the note in the text, and the
// turn still ending on tool calls.
func TestRewriteRenumberedJudgedBySDK(t *testing.T) {
	var out bytes.Buffer
	rw := NewRewriter(OpenAIChat, &out, func(c ToolCall) Verdict {
		return Verdict{Strike: c.Name == "shell_run", Note: testNote}
	})
	rw.Write([]byte(twoCalls))
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	c := openai.NewClient(oopt.WithBaseURL(serveBytes(t, out.Bytes())+"/v1"), oopt.WithAPIKey("test"), oopt.WithMaxRetries(0))
	st := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{Model: "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	acc := openai.ChatCompletionAccumulator{}
	for st.Next() {
		if !acc.AddChunk(st.Current()) {
			t.Fatal("the accumulator refused a chunk")
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	m := acc.Choices[0].Message
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "get_weather" || m.ToolCalls[0].ID != "call_b" ||
		m.ToolCalls[0].Function.Arguments != `{"city":"Oslo"}` {
		t.Errorf("the SDK read calls %+v", m.ToolCalls)
	}
	if !strings.Contains(m.Content, testNote) || acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("the SDK read text %q finish %q", m.Content, acc.Choices[0].FinishReason)
	}
}

// Anthropic: a struck block stays at its index as a text block, so the
// SDK's Accumulate, which places each event by index, takes it.
func TestRewriteAnthropicJudgedBySDK(t *testing.T) {
	var out bytes.Buffer
	rw := NewRewriter(AnthropicMessages, &out, func(c ToolCall) Verdict { return Verdict{Strike: true, Note: testNote} })
	rw.Write(fixture(t, "anthropic_stream.sse"))
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	c := anthropic.NewClient(aopt.WithBaseURL(serveBytes(t, out.Bytes())), aopt.WithAPIKey("test"), aopt.WithMaxRetries(0))
	st := c.Messages.NewStreaming(t.Context(), anthropic.MessageNewParams{Model: "m", MaxTokens: 10,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	var m anthropic.Message
	for st.Next() {
		if err := m.Accumulate(st.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if len(m.Content) != 2 || m.Content[1].Type != "text" || m.Content[1].Text != testNote || m.StopReason != "end_turn" || m.Usage.OutputTokens != 89 {
		t.Errorf("the SDK read %+v", m)
	}
}
