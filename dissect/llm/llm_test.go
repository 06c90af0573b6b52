package llm

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRoutePath(t *testing.T) {
	for _, c := range []struct {
		path string
		want Route
	}{
		{"/v1/chat/completions", Route{Dialect: OpenAIChat}},
		{"/openai/deployments/x/chat/completions", Route{Dialect: OpenAIChat}},
		{"/v1/responses", Route{Dialect: OpenAIResponses}},
		{"/v1/messages", Route{Dialect: AnthropicMessages}},
		{"/v1beta/models/gemini-2.5-flash:generateContent", Route{Dialect: Gemini, Model: "gemini-2.5-flash"}},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent", Route{Dialect: Gemini, Model: "gemini-2.5-flash", Stream: true}},
		{"/v1/projects/p/locations/l/publishers/google/models/gemini-2.0:generateContent", Route{Dialect: Gemini, Model: "gemini-2.0"}},
		{"/v1beta/models/gemini-2.5-flash:countTokens", Route{}},
		{"/v1beta/models/:generateContent", Route{}},
		{"/v1/messages/count_tokens", Route{}},
		{"/v1/models", Route{}},
		{"/", Route{}},
	} {
		if got := RoutePath(c.path); got != c.want {
			t.Errorf("RoutePath(%q) = %+v, want %+v", c.path, got, c.want)
		}
	}
}

func TestParseDialect(t *testing.T) {
	for _, d := range []Dialect{OpenAIChat, OpenAIResponses, AnthropicMessages, Gemini} {
		if got, ok := ParseDialect(d.String()); !ok || got != d {
			t.Errorf("ParseDialect(%q) = %v, %v", d.String(), got, ok)
		}
	}
	for _, s := range []string{"", "unknown", "OpenAI-Chat", "openai"} {
		if _, ok := ParseDialect(s); ok {
			t.Errorf("ParseDialect(%q) accepted", s)
		}
	}
}

// ParseRequest reads a model as the providers' servers do, and what they
// would read otherwise than a lenient reader is unreadable.
func TestParseRequest(t *testing.T) {
	chat := Route{Dialect: OpenAIChat}
	for _, c := range []struct {
		name string
		rt   Route
		body string
		want Request
		bad  bool
	}{
		{"chat", chat, `{"model":"gpt-4o","stream":true,"messages":[],"tools":[{"type":"function","function":{"name":"get_weather"}}]}`,
			Request{Dialect: OpenAIChat, Model: "gpt-4o", Stream: true, Tools: []string{"get_weather"}}, false},
		{"responses", Route{Dialect: OpenAIResponses}, `{"model":"o4-mini","input":"hi","tools":[{"type":"function","name":"f"},{"type":"web_search"}]}`,
			Request{Dialect: OpenAIResponses, Model: "o4-mini", Tools: []string{"f"}}, false},
		{"anthropic", Route{Dialect: AnthropicMessages}, `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tools":[{"name":"t","input_schema":{}}]}`,
			Request{Dialect: AnthropicMessages, Model: "claude-sonnet-4-5", Tools: []string{"t"}}, false},
		{"gemini both spellings", Route{Dialect: Gemini, Model: "gemini-2.5-flash", Stream: true},
			`{"contents":[],"tools":[{"functionDeclarations":[{"name":"a"}]},{"function_declarations":[{"name":"b"}]}]}`,
			Request{Dialect: Gemini, Model: "gemini-2.5-flash", Stream: true, Tools: []string{"a", "b"}}, false},
		// Go's encoding/json would read "MODEL" as the model, or the
		// last of two: the provider reads "model", the first or last.
		{"case variant", chat, `{"model":"gpt-4o-mini","MODEL":"gpt-4o"}`, Request{}, true},
		// Alone, "MODEL" is the model to a Go server; a Python one refuses
		// the request for want of one.
		{"case variant, alone", chat, `{"MODEL":"gpt-4o"}`, Request{Dialect: OpenAIChat, Model: "gpt-4o"}, false},
		{"duplicate", chat, `{"model":"gpt-4o-mini","model":"o3"}`, Request{}, true},
		{"trailing", chat, `{"model":"gpt-4o"} {"model":"o3"}`, Request{}, true},
		{"bad utf8", chat, "{\"model\":\"gpt-4o\xff\"}", Request{}, true},
		{"no model", chat, `{"messages":[]}`, Request{}, true},
		{"model not a string", chat, `{"model":4}`, Request{}, true},
		{"unknown dialect", Route{}, `{"model":"x"}`, Request{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseRequest(c.rt, []byte(c.body))
			if c.bad {
				if err == nil || !errors.Is(err, ErrUnreadable) {
					t.Fatalf("ParseRequest = %+v, %v; want unreadable", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("ParseRequest = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// The stream splitter follows the event-stream line rules: CR, LF and
// CRLF end lines, a blank line ends an event, data lines join with LF.
func TestStreamLineEnds(t *testing.T) {
	chunk := func(content string) string {
		return `{"model":"m","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":null}]}`
	}
	for _, sep := range []string{"\n", "\r", "\r\n"} {
		s := NewStream(OpenAIChat)
		in := "data: " + chunk("a") + sep + sep + ": a comment" + sep + "event: x" + sep + "data:" + chunk("b") + sep + sep + "data: [DONE]" + sep + sep
		for i := 0; i < len(in); i++ { // a byte at a time: a CR at a read's end
			s.Write([]byte{in[i]})
		}
		got, err := s.Turn()
		if err != nil || got.Text != "ab" || got.Model != "m" {
			t.Errorf("line end %q: %+v, %v", sep, got, err)
		}
	}
	// A data field split over two lines is one event's data.
	s := NewStream(Gemini)
	s.Write([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"index\":0}],\ndata: \"modelVersion\":\"g\"}\n\n"))
	if got, err := s.Turn(); err != nil || got.Text != "x" || got.Model != "g" {
		t.Errorf("two data lines: %+v, %v", got, err)
	}
	// The last event, cut off by the end of the stream, is still read.
	s = NewStream(OpenAIChat)
	s.Write([]byte("data: " + chunk("end")))
	if got, err := s.Turn(); err != nil || got.Text != "end" {
		t.Errorf("unterminated last event: %+v, %v", got, err)
	}
}

func TestStreamFailures(t *testing.T) {
	s := NewStream(AnthropicMessages)
	s.Write([]byte("data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n"))
	if _, err := s.Turn(); !errors.Is(err, ErrUnreadable) {
		t.Errorf("a delta for no block: %v", err)
	}
	s = NewStream(OpenAIChat)
	s.Write([]byte("data: {not json}\n\ndata: {\"model\":\"m\"}\n\n"))
	if got, err := s.Turn(); !errors.Is(err, ErrUnreadable) || got.Model != "" {
		t.Errorf("bad chunk: %+v, %v (the reading stops at it)", got, err)
	}
	s = NewStream(OpenAIChat)
	big := []byte("data: \"" + strings.Repeat("x", MaxEvent) + "\"\n\n")
	if n, err := s.Write(big); n != len(big) || err != nil {
		t.Errorf("Write = %d, %v: it must take everything", n, err)
	}
	if _, err := s.Turn(); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("a huge event: %v", err)
	}
	if _, err := NewStream(Unknown).Turn(); !errors.Is(err, ErrUnreadable) {
		t.Errorf("unknown dialect: %v", err)
	}
}

// Text is capped on a rune boundary, and a tool call's long arguments are
// not kept but say so.
func TestCaps(t *testing.T) {
	var s string
	addText(&s, strings.Repeat("a", MaxText-1)+"é")
	if len(s) != MaxText-1 {
		t.Errorf("cut inside a rune: %d bytes", len(s))
	}
	addText(&s, "more")
	if len(s) != MaxText || !strings.HasSuffix(s, "am") {
		t.Errorf("the last byte of room not used: %d", len(s))
	}
	addText(&s, "more")
	if len(s) != MaxText {
		t.Errorf("grew past the cap: %d", len(s))
	}
	var c ToolCall
	c.setArgs([]byte(`{"x":"` + strings.Repeat("y", MaxArguments) + `"}`))
	if !c.Truncated || c.Arguments != nil {
		t.Errorf("long arguments kept: %v", c.Truncated)
	}
}

// FuzzStream: any bytes, in any pieces, never panic, and a stream read
// whole and in pieces says the same.
func FuzzStream(f *testing.F) {
	for _, file := range []string{"openai_chat_stream.sse", "openai_responses_stream.sse", "anthropic_stream.sse", "gemini_stream.sse"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(5), uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, piece, dialect uint8) {
		d := Dialect(dialect%4 + 1)
		whole := NewStream(d)
		whole.Write(b)
		wt, werr := whole.Turn()
		parts := NewStream(d)
		step := int(piece%16) + 1
		for p := b; len(p) > 0; {
			n := min(step, len(p))
			parts.Write(p[:n])
			p = p[n:]
		}
		pt, perr := parts.Turn()
		if (werr == nil) != (perr == nil) || !reflect.DeepEqual(wt, pt) {
			t.Fatalf("whole %+v, %v\npieces of %d %+v, %v", wt, werr, step, pt, perr)
		}
	})
}

// FuzzAnswer: any body, any dialect, never panics.
func FuzzAnswer(f *testing.F) {
	for _, file := range []string{"openai_chat.json", "openai_responses.json", "anthropic.json", "gemini.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, dialect uint8) {
		ReadAnswer(Dialect(dialect%5), b)
		ParseRequest(RoutePath(string(b)), b)
	})
}
