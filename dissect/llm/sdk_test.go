package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"
)

// The providers' own SDKs are the judges of every reading: each fixture
// (testdata/, in the shapes the API references document) is served by a
// loopback server to the provider's SDK, and what llm reads from the very
// bytes the SDK was sent must equal what the SDK made of them.

// served is a loopback server answering every request with one fixture,
// keeping a copy of the bytes it sent.
type served struct {
	*httptest.Server
	mu   sync.Mutex
	sent []byte
}

func serve(t *testing.T, file string) *served {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	s := &served{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := "application/json"
		if strings.HasSuffix(file, ".sse") {
			ct = "text/event-stream"
		}
		w.Header().Set("Content-Type", ct)
		s.mu.Lock()
		s.sent = append(s.sent[:0], body...)
		s.mu.Unlock()
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *served) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.sent)
}

// readOurs reads what s sent, whole or as a stream fed in pieces of
// every size from 1 byte up (the splitter must not care where reads end).
func readOurs(t *testing.T, d Dialect, s *served, streamed bool) Turn {
	t.Helper()
	b := s.bytes()
	if !streamed {
		got, err := ReadAnswer(d, b)
		if err != nil {
			t.Fatalf("ReadAnswer: %v", err)
		}
		return got
	}
	var first Turn
	for _, size := range []int{len(b), 1, 2, 3, 7, 64} {
		st := NewStream(d)
		for p := b; len(p) > 0; {
			n := min(size, len(p))
			st.Write(p[:n])
			p = p[n:]
		}
		got, err := st.Turn()
		if err != nil {
			t.Fatalf("Stream (pieces of %d): %v", size, err)
		}
		if st.FirstOutput().IsZero() {
			t.Errorf("Stream (pieces of %d): no first output seen", size)
		}
		if size == len(b) {
			first = got
		} else if !reflect.DeepEqual(canon(t, got), canon(t, first)) {
			t.Fatalf("Stream read in pieces of %d differs:\n got %+v\nwant %+v", size, got, first)
		}
	}
	return first
}

// canon makes a Turn comparable: arguments as re-encoded JSON objects.
func canon(t *testing.T, x Turn) Turn {
	t.Helper()
	x.ToolCalls = append([]ToolCall(nil), x.ToolCalls...)
	for i, c := range x.ToolCalls {
		var v any
		if err := json.Unmarshal(c.Arguments, &v); err != nil {
			t.Fatalf("tool call %s: arguments %q: %v", c.Name, c.Arguments, err)
		}
		x.ToolCalls[i].Arguments, _ = json.Marshal(v)
	}
	x.Dialect, x.Streamed, x.HasUsage = 0, false, false
	return x
}

func same(t *testing.T, ours, sdk Turn) {
	t.Helper()
	// Every fixture names a model, reports usage, stops for a reason and
	// asks for a tool after some text: a judge that saw none of it judged
	// nothing.
	if sdk.Model == "" || sdk.Usage.Input == 0 || sdk.Usage.Output == 0 || sdk.StopReason == "" || len(sdk.ToolCalls) == 0 || sdk.Text == "" {
		t.Fatalf("the SDK read too little to judge by: %+v", sdk)
	}
	if o, s := canon(t, ours), canon(t, sdk); !reflect.DeepEqual(o, s) {
		t.Errorf("llm read\n %+v\nthe SDK read\n %+v", o, s)
	}
}

func TestOpenAIChatAgreesWithSDK(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		file := map[bool]string{false: "openai_chat.json", true: "openai_chat_stream.sse"}[streamed]
		t.Run(file, func(t *testing.T) {
			s := serve(t, file)
			c := openai.NewClient(oopt.WithBaseURL(s.URL+"/v1"), oopt.WithAPIKey("test"), oopt.WithMaxRetries(0))
			params := openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
			var cc openai.ChatCompletion
			if streamed {
				st := c.Chat.Completions.NewStreaming(t.Context(), params)
				acc := openai.ChatCompletionAccumulator{}
				for st.Next() {
					acc.AddChunk(st.Current())
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
				cc = acc.ChatCompletion
			} else {
				res, err := c.Chat.Completions.New(t.Context(), params)
				if err != nil {
					t.Fatal(err)
				}
				cc = *res
			}
			sdk := Turn{Model: cc.Model, Usage: Usage{
				Input: cc.Usage.PromptTokens, Output: cc.Usage.CompletionTokens,
				Cached: cc.Usage.PromptTokensDetails.CachedTokens, Reasoning: cc.Usage.CompletionTokensDetails.ReasoningTokens,
			}}
			if len(cc.Choices) > 0 {
				m := cc.Choices[0].Message
				sdk.Text, sdk.StopReason = m.Content, string(cc.Choices[0].FinishReason)
				for _, tc := range m.ToolCalls {
					sdk.ToolCalls = append(sdk.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: []byte(tc.Function.Arguments)})
				}
			}
			same(t, readOurs(t, OpenAIChat, s, streamed), sdk)
		})
	}
}

func TestOpenAIResponsesAgreesWithSDK(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		file := map[bool]string{false: "openai_responses.json", true: "openai_responses_stream.sse"}[streamed]
		t.Run(file, func(t *testing.T) {
			s := serve(t, file)
			c := openai.NewClient(oopt.WithBaseURL(s.URL+"/v1"), oopt.WithAPIKey("test"), oopt.WithMaxRetries(0))
			params := responses.ResponseNewParams{Model: "gpt-4.1", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}
			var r responses.Response
			if streamed {
				st := c.Responses.NewStreaming(t.Context(), params)
				for st.Next() {
					if ev := st.Current(); ev.Type == "response.completed" {
						r = ev.Response
					}
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				res, err := c.Responses.New(t.Context(), params)
				if err != nil {
					t.Fatal(err)
				}
				r = *res
			}
			sdk := Turn{Model: string(r.Model), StopReason: string(r.Status), Usage: Usage{
				Input: r.Usage.InputTokens, Output: r.Usage.OutputTokens,
				Cached: r.Usage.InputTokensDetails.CachedTokens, Reasoning: r.Usage.OutputTokensDetails.ReasoningTokens,
			}}
			for _, it := range r.Output {
				switch it.Type {
				case "message":
					for _, c := range it.AsMessage().Content {
						sdk.Text += c.Text
					}
				case "reasoning":
					for _, s := range it.AsReasoning().Summary {
						sdk.Reasoning += s.Text
					}
				case "function_call":
					fc := it.AsFunctionCall()
					sdk.ToolCalls = append(sdk.ToolCalls, ToolCall{ID: fc.CallID, Name: fc.Name, Arguments: []byte(fc.Arguments)})
				}
			}
			same(t, readOurs(t, OpenAIResponses, s, streamed), sdk)
		})
	}
}

func TestAnthropicAgreesWithSDK(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		file := map[bool]string{false: "anthropic.json", true: "anthropic_stream.sse"}[streamed]
		t.Run(file, func(t *testing.T) {
			s := serve(t, file)
			c := anthropic.NewClient(aopt.WithBaseURL(s.URL), aopt.WithAPIKey("test"), aopt.WithMaxRetries(0))
			params := anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 1024,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
			var m anthropic.Message
			if streamed {
				st := c.Messages.NewStreaming(t.Context(), params)
				for st.Next() {
					if err := m.Accumulate(st.Current()); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				res, err := c.Messages.New(t.Context(), params)
				if err != nil {
					t.Fatal(err)
				}
				m = *res
			}
			u := m.Usage
			sdk := Turn{Model: string(m.Model), StopReason: string(m.StopReason), Usage: Usage{
				Input:  u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens,
				Output: u.OutputTokens, Cached: u.CacheReadInputTokens, CacheWrite: u.CacheCreationInputTokens,
			}}
			for _, b := range m.Content {
				switch b.Type {
				case "text":
					sdk.Text += b.Text
				case "thinking":
					sdk.Reasoning += b.Thinking
				case "tool_use":
					sdk.ToolCalls = append(sdk.ToolCalls, ToolCall{ID: b.ID, Name: b.Name, Arguments: []byte(b.Input)})
				}
			}
			same(t, readOurs(t, AnthropicMessages, s, streamed), sdk)
		})
	}
}

func TestGeminiAgreesWithSDK(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		file := map[bool]string{false: "gemini.json", true: "gemini_stream.sse"}[streamed]
		t.Run(file, func(t *testing.T) {
			s := serve(t, file)
			c, err := genai.NewClient(context.Background(), &genai.ClientConfig{APIKey: "test", Backend: genai.BackendGeminiAPI,
				HTTPOptions: genai.HTTPOptions{BaseURL: s.URL}})
			if err != nil {
				t.Fatal(err)
			}
			var chunks []*genai.GenerateContentResponse
			if streamed {
				for r, err := range c.Models.GenerateContentStream(t.Context(), "gemini-2.5-flash", genai.Text("hi"), nil) {
					if err != nil {
						t.Fatal(err)
					}
					chunks = append(chunks, r)
				}
			} else {
				r, err := c.Models.GenerateContent(t.Context(), "gemini-2.5-flash", genai.Text("hi"), nil)
				if err != nil {
					t.Fatal(err)
				}
				chunks = append(chunks, r)
			}
			var sdk Turn
			for _, r := range chunks {
				sdk.Model = r.ModelVersion
				if u := r.UsageMetadata; u != nil {
					sdk.Usage = Usage{Input: int64(u.PromptTokenCount + u.ToolUsePromptTokenCount), Output: int64(u.CandidatesTokenCount + u.ThoughtsTokenCount),
						Cached: int64(u.CachedContentTokenCount), Reasoning: int64(u.ThoughtsTokenCount)}
				}
				for _, cand := range r.Candidates {
					if cand.FinishReason != "" {
						sdk.StopReason = string(cand.FinishReason)
					}
					if cand.Content == nil {
						continue
					}
					for _, p := range cand.Content.Parts {
						switch {
						case p.FunctionCall != nil:
							args, _ := json.Marshal(p.FunctionCall.Args)
							sdk.ToolCalls = append(sdk.ToolCalls, ToolCall{ID: p.FunctionCall.ID, Name: p.FunctionCall.Name, Arguments: args})
						case p.Thought:
							sdk.Reasoning += p.Text
						default:
							sdk.Text += p.Text
						}
					}
				}
			}
			same(t, readOurs(t, Gemini, s, streamed), sdk)
		})
	}
}
