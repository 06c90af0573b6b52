package llm

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The rewriter's tests read what it wrote with this package's readers,
// which sdk_test.go holds to the providers' SDKs; test/llm_guard_test.go
// has the SDKs themselves judge it end to end.

const testNote = "agentg: tool call removed by rule no-tools"

func denyAll(names *[]string) Decider {
	return func(c ToolCall) Verdict {
		*names = append(*names, c.Name)
		return Verdict{Strike: true, Note: testNote}
	}
}

func allowAll(c ToolCall) Verdict { return Verdict{} }

func fixture(t testing.TB, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", f))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var rewriteCases = []struct {
	d             Dialect
	whole, stream string
	tool, sTool   string // the fixture's tool call, whole and streamed
	stop, sStop   string // the stop reason once struck
}{
	{OpenAIChat, "openai_chat.json", "openai_chat_stream.sse", "mcp__jira__create_issue", "get_weather", "stop", "stop"},
	{OpenAIResponses, "openai_responses.json", "openai_responses_stream.sse", "get_weather", "search_issues", "", ""},
	{AnthropicMessages, "anthropic.json", "anthropic_stream.sse", "jira_create_issue", "get_weather", "end_turn", "end_turn"},
	{Gemini, "gemini.json", "gemini_stream.sse", "calendar_list_events", "get_forecast", "STOP", "STOP"},
}

func TestRewriteAnswer(t *testing.T) {
	for _, c := range rewriteCases {
		t.Run(c.d.String(), func(t *testing.T) {
			body := fixture(t, c.whole)
			out, changed, err := RewriteAnswer(c.d, body, allowAll)
			if err != nil || changed || !bytes.Equal(out, body) {
				t.Fatalf("allowed: changed %v err %v, or other bytes", changed, err)
			}
			var asked []string
			out, changed, err = RewriteAnswer(c.d, body, denyAll(&asked))
			if err != nil || !changed {
				t.Fatalf("denied: changed %v err %v", changed, err)
			}
			if len(asked) != 1 || asked[0] != c.tool {
				t.Errorf("decided %v, want [%s]", asked, c.tool)
			}
			turn, err := ReadAnswer(c.d, out)
			if err != nil {
				t.Fatalf("the rewritten answer does not read: %v\n%s", err, out)
			}
			if len(turn.ToolCalls) != 0 || !strings.Contains(turn.Text, testNote) {
				t.Errorf("rewritten: calls %v text %q\n%s", turn.ToolCalls, turn.Text, out)
			}
			if c.stop != "" && turn.StopReason != c.stop {
				t.Errorf("stop reason %q, want %q", turn.StopReason, c.stop)
			}
		})
	}
}

func TestRewriteStream(t *testing.T) {
	for _, c := range rewriteCases {
		t.Run(c.d.String(), func(t *testing.T) {
			body := fixture(t, c.stream)
			var out bytes.Buffer
			rw := NewRewriter(c.d, &out, allowAll)
			if _, err := rw.Write(body); err != nil {
				t.Fatal(err)
			}
			if err := rw.Close(); err != nil || !bytes.Equal(out.Bytes(), body) {
				t.Fatalf("allowed: err %v, or other bytes:\n%s", err, out.Bytes())
			}
			var asked []string
			out.Reset()
			rw = NewRewriter(c.d, &out, denyAll(&asked))
			rw.Write(body)
			if err := rw.Close(); err != nil {
				t.Fatal(err)
			}
			if len(asked) != 1 || asked[0] != c.sTool || rw.Struck() != 1 {
				t.Errorf("decided %v (struck %d), want [%s]", asked, rw.Struck(), c.sTool)
			}
			st := NewStream(c.d)
			st.Write(out.Bytes())
			turn, err := st.Turn()
			if err != nil {
				t.Fatalf("the rewritten stream does not read: %v\n%s", err, out.Bytes())
			}
			if len(turn.ToolCalls) != 0 || !strings.Contains(turn.Text, testNote) {
				t.Errorf("rewritten: calls %v text %q\n%s", turn.ToolCalls, turn.Text, out.Bytes())
			}
			if c.sStop != "" && turn.StopReason != c.sStop {
				t.Errorf("stop reason %q, want %q", turn.StopReason, c.sStop)
			}
			if !turn.HasUsage {
				t.Error("usage lost")
			}
		})
	}
}

// twoCalls is a Chat stream asking for two calls in one turn.
const twoCalls = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Two."},"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"shell_run","arguments":""}}]},"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"cmd\":\"rm -rf /\"}"}}]},"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: [DONE]

`

func TestRewriteStreamRenumbers(t *testing.T) {
	var out bytes.Buffer
	var asked []string
	rw := NewRewriter(OpenAIChat, &out, func(c ToolCall) Verdict {
		asked = append(asked, c.Name+" "+string(c.Arguments))
		return Verdict{Strike: c.Name == "shell_run", Note: testNote}
	})
	rw.Write([]byte(twoCalls))
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(asked, "|") != `shell_run {"cmd":"rm -rf /"}|get_weather {"city":"Oslo"}` {
		t.Errorf("decided %q", asked)
	}
	st := NewStream(OpenAIChat)
	st.Write(out.Bytes())
	turn, err := st.Turn()
	if err != nil {
		t.Fatal(err)
	}
	if len(turn.ToolCalls) != 1 || turn.ToolCalls[0].Name != "get_weather" || turn.StopReason != "tool_calls" {
		t.Errorf("turn %+v\n%s", turn, out.Bytes())
	}
	if strings.Contains(out.String(), "rm -rf") || strings.Contains(out.String(), `"index":1`) {
		t.Errorf("the struck call or its index is still there:\n%s", out.Bytes())
	}
}

// The tool call's own chunks are held; the text before it is not.
func TestRewriteStreamHoldsOnlyTheCall(t *testing.T) {
	body := fixture(t, "anthropic_stream.sse")
	var out bytes.Buffer
	rw := NewRewriter(AnthropicMessages, &out, func(ToolCall) Verdict { return Verdict{} })
	cut := bytes.Index(body, []byte(`"partial_json":"{`))
	rw.Write(body[:cut])
	if !bytes.Contains(out.Bytes(), []byte("the weather for San Francisco")) {
		t.Error("text before the call was held")
	}
	if bytes.Contains(out.Bytes(), []byte(`"tool_use"`)) {
		t.Error("the incomplete call was sent")
	}
}

func TestRewriteFailsClosed(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		body string
	}{
		{OpenAIChat, "data: {\"choices\":[{\"index\":0,\"delta\":{\"Tool_calls\":[{\"index\":0,\"function\":{\"name\":\"x\"}}]}}]}\n\n"},
		{OpenAIChat, "data: {not json\n\n"},
		{AnthropicMessages, "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"name\":\"x\"},\"type\":\"ping\"}\n\n"},
		{Gemini, "data: [1]\n\n"},
		// The deprecated streamed function_call has nothing to hold it by.
		{OpenAIChat, "data: {\"choices\":[{\"index\":0,\"delta\":{\"function_call\":{\"name\":\"x\",\"arguments\":\"{}\"}}}]}\n\n"},
		// Tool input for a block that never started.
		{AnthropicMessages, "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"},
	} {
		var out bytes.Buffer
		rw := NewRewriter(c.d, &out, allowAll)
		_, err := rw.Write([]byte(c.body))
		if err == nil {
			err = rw.Close()
		}
		if err == nil || out.Len() != 0 {
			t.Errorf("%s %q: err %v, sent %q", c.d, c.body, err, out.Bytes())
		}
	}
}

// FuzzRewriteChunking: however the stream is cut into Writes, the
// rewriter sends the same bytes as for one Write.
func FuzzRewriteChunking(f *testing.F) {
	for i, c := range rewriteCases {
		f.Add(uint8(i), int64(1), true, fixture(f, c.stream))
		f.Add(uint8(i), int64(2), false, bytes.ReplaceAll(fixture(f, c.stream), []byte("\n"), []byte("\r\n")))
	}
	f.Add(uint8(0), int64(3), true, []byte(twoCalls))
	f.Fuzz(func(t *testing.T, d uint8, seed int64, deny bool, body []byte) {
		c := rewriteCases[int(d)%len(rewriteCases)]
		decide := func(tc ToolCall) Verdict { return Verdict{Strike: deny, Note: testNote + " " + tc.Name} }
		var one bytes.Buffer
		rw := NewRewriter(c.d, &one, decide)
		_, err1 := rw.Write(body)
		if err1 == nil {
			err1 = rw.Close()
		}
		var many bytes.Buffer
		rw = NewRewriter(c.d, &many, decide)
		r := rand.New(rand.NewSource(seed))
		var err2 error
		for p := body; len(p) > 0 && err2 == nil; {
			n := 1 + r.Intn(len(p))
			_, err2 = rw.Write(p[:n])
			p = p[n:]
		}
		if err2 == nil {
			err2 = rw.Close()
		}
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(one.Bytes(), many.Bytes()) {
			t.Fatalf("one write: %v\n%q\npieces: %v\n%q", err1, one.Bytes(), err2, many.Bytes())
		}
	})
}

// FuzzRewriteAnswer: rewriting a whole answer never panics, and an
// answer this package reads, with every call struck, reads again with no
// tool call left.
func FuzzRewriteAnswer(f *testing.F) {
	for i, c := range rewriteCases {
		f.Add(uint8(i), fixture(f, c.whole))
	}
	f.Fuzz(func(t *testing.T, d uint8, body []byte) {
		c := rewriteCases[int(d)%len(rewriteCases)]
		var asked []string
		out, changed, err := RewriteAnswer(c.d, body, denyAll(&asked))
		if err != nil {
			return
		}
		before, err := ReadAnswer(c.d, body)
		if err != nil {
			return
		}
		if !changed && !bytes.Equal(out, body) {
			t.Fatal("unchanged, and other bytes")
		}
		after, err := ReadAnswer(c.d, out)
		if err != nil {
			t.Fatalf("the rewritten answer does not read: %v\n%s", err, out)
		}
		if len(after.ToolCalls) != 0 {
			t.Fatalf("calls left %v (before %v, asked %v)\n%s", after.ToolCalls, before.ToolCalls, asked, out)
		}
	})
}

// A stream that ends inside a tool call: what came of the call cannot be
// checked whole, so it is struck unasked; the text before it is sent.
func TestRewriteStreamCutInCall(t *testing.T) {
	for _, c := range rewriteCases[:3] { // Gemini's calls come whole
		t.Run(c.d.String(), func(t *testing.T) {
			body := fixture(t, c.stream)
			cut := bytes.Index(body, []byte(c.sTool))
			cut += bytes.Index(body[cut:], []byte("\n\n")) + 2 // the event that opens the call, whole
			var out bytes.Buffer
			asked := 0
			rw := NewRewriter(c.d, &out, func(ToolCall) Verdict { asked++; return Verdict{} })
			rw.Write(body[:cut])
			if err := rw.Close(); err != nil {
				t.Fatal(err)
			}
			if asked != 0 || bytes.Contains(out.Bytes(), []byte(c.sTool)) {
				t.Errorf("asked %d; sent\n%s", asked, out.Bytes())
			}
			if c.d == OpenAIChat && !bytes.Contains(out.Bytes(), []byte("could not be checked whole")) {
				t.Errorf("no note:\n%s", out.Bytes())
			}
		})
	}
}

// Shapes beyond the fixtures: the deprecated Chat function_call, a
// Responses custom_tool_call, argument events ahead of their item.
func TestRewriteOtherShapes(t *testing.T) {
	var asked []string
	legacy := `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
		`"function_call":{"name":"shell_run","arguments":"{\"cmd\":\"rm\"}"}},"finish_reason":"function_call"}]}`
	out, changed, err := RewriteAnswer(OpenAIChat, []byte(legacy), denyAll(&asked))
	if err != nil || !changed || bytes.Contains(out, []byte("shell_run")) || !bytes.Contains(out, []byte(`"finish_reason":"stop"`)) ||
		!bytes.Contains(out, []byte(testNote)) {
		t.Errorf("legacy function_call: %v %v\n%s", changed, err, out)
	}
	custom := `{"id":"r","object":"response","status":"completed","model":"m","output":[{"type":"custom_tool_call","id":"ctc_1","call_id":"call_1","name":"run","input":"rm -rf /"}]}`
	out, changed, err = RewriteAnswer(OpenAIResponses, []byte(custom), denyAll(&asked))
	if err != nil || !changed || bytes.Contains(out, []byte("rm -rf")) || !bytes.Contains(out, []byte(testNote)) {
		t.Errorf("custom_tool_call: %v %v\n%s", changed, err, out)
	}
	early := "data: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":1,\"item_id\":\"fc_1\",\"output_index\":0,\"delta\":\"{\\\"q\\\":1}\"}\n\n" +
		"data: {\"type\":\"response.output_item.done\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"c1\",\"name\":\"x\",\"arguments\":\"{\\\"q\\\":1}\"}}\n\n"
	var buf bytes.Buffer
	rw := NewRewriter(OpenAIResponses, &buf, denyAll(&asked))
	rw.Write([]byte(early))
	if err := rw.Close(); err != nil || bytes.Contains(buf.Bytes(), []byte("function_call")) ||
		!bytes.Contains(buf.Bytes(), []byte("msg_agentg_fc_1")) || rw.Struck() != 1 {
		t.Errorf("arguments ahead of their item: %v\n%s", err, buf.Bytes())
	}
}
