package llm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestRewriteContent(t *testing.T) {
	mark := func(v jsontext.Value) (jsontext.Value, error) {
		return bytes.ReplaceAll(v, []byte("SECRET"), []byte("[gone]")), nil
	}
	for _, tt := range []struct {
		d         Dialect
		in, want  string
		rewritten bool
	}{
		{OpenAIChat, `{"model":"SECRET","messages":[{"role":"user","content":"a SECRET"}],"n":1}`,
			`{"model":"SECRET","messages":[{"role":"user","content":"a [gone]"}],"n":1}`, true},
		// A spelling a case-insensitive server reads as messages.
		{OpenAIChat, `{ "model" : "m" , "Messages" : ["SECRET"] }`, `{ "model" : "m" , "Messages" : ["[gone]"] }`, true},
		{OpenAIChat, `{"model":"m","messages":[]}`, `{"model":"m","messages":[]}`, false},
		{OpenAIResponses, `{"model":"m","input":"SECRET","instructions":"SECRET","metadata":{"x":"SECRET"}}`,
			`{"model":"m","input":"[gone]","instructions":"[gone]","metadata":{"x":"SECRET"}}`, true},
		{AnthropicMessages, `{"model":"m","system":"SECRET","messages":[{"role":"user","content":[{"type":"text","text":"SECRET"}]}],"tools":[{"name":"SECRET"}]}`,
			`{"model":"m","system":"[gone]","messages":[{"role":"user","content":[{"type":"text","text":"[gone]"}]}],"tools":[{"name":"SECRET"}]}`, true},
		{Gemini, `{"contents":[{"parts":[{"text":"SECRET"}]}],"system_instruction":{"parts":[{"text":"SECRET"}]},"generationConfig":{"x":"SECRET"}}`,
			`{"contents":[{"parts":[{"text":"[gone]"}]}],"system_instruction":{"parts":[{"text":"[gone]"}]},"generationConfig":{"x":"SECRET"}}`, true},
	} {
		got, changed, err := RewriteContent(tt.d, []byte(tt.in), mark)
		if err != nil || string(got) != tt.want || changed != tt.rewritten {
			t.Errorf("%s %s:\n got %s %v %v\nwant %s", tt.d, tt.in, got, changed, err, tt.want)
		}
	}
	for _, bad := range []string{`[]`, `{"messages":[}`, `{"a":1,"a":2}`, `{"messages":[]} x`} {
		if _, _, err := RewriteContent(OpenAIChat, []byte(bad), mark); !errors.Is(err, ErrUnreadable) {
			t.Errorf("%s: err %v", bad, err)
		}
	}
	boom := errors.New("boom")
	if _, _, err := RewriteContent(OpenAIChat, []byte(`{"messages":[]}`), func(jsontext.Value) (jsontext.Value, error) { return nil, boom }); err != boom {
		t.Errorf("f's error: %v", err)
	}
}

// FuzzRewriteContent: whatever body RewriteContent accepts, the body it
// returns is one valid JSON object, and a rewrite that changes nothing
// returns the body itself.
func FuzzRewriteContent(f *testing.F) {
	f.Add(uint8(OpenAIChat), []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add(uint8(AnthropicMessages), []byte(`{"model":"m","system":"s","MESSAGES":[]}`))
	f.Add(uint8(Gemini), []byte(` {"contents":[{"parts":[{"text":"x"}]}]} `))
	f.Add(uint8(OpenAIResponses), []byte(`{"input":"\u0041","instructions":null}`))
	f.Fuzz(func(t *testing.T, d uint8, body []byte) {
		dl := Dialect(d%4 + 1)
		same, changed, err := RewriteContent(dl, body, func(v jsontext.Value) (jsontext.Value, error) { return v, nil })
		if err != nil {
			return
		}
		if changed || !bytes.Equal(same, body) {
			t.Fatalf("an identity rewrite changed %q into %q", body, same)
		}
		out, _, err := RewriteContent(dl, body, func(jsontext.Value) (jsontext.Value, error) { return jsontext.Value(`"x"`), nil })
		if err != nil {
			t.Fatalf("second reading failed: %v", err)
		}
		if !jsontext.Value(out).IsValid() || jsontext.Value(out).Kind() != '{' {
			t.Fatalf("%q rewritten into invalid JSON %q", body, out)
		}
	})
}
