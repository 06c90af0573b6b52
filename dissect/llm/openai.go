package llm

import (
	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// OpenAI Chat Completions (and the compatible servers) and OpenAI
// Responses, as the API reference documents them and openai-go reads them.

type chatUsage struct {
	Prompt     int64 `json:"prompt_tokens"`
	Completion int64 `json:"completion_tokens"`
	PromptDet  struct {
		Cached int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionDet struct {
		Reasoning int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

func (u *chatUsage) usage() Usage {
	return Usage{Input: u.Prompt, Output: u.Completion, Cached: u.PromptDet.Cached, Reasoning: u.CompletionDet.Reasoning}
}

type chatToolCall struct {
	Index    int    `json:"index"` // streamed deltas only
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"` // JSON text in a string
	} `json:"function"`
}

// chatMessage is a whole answer's message and a stream chunk's delta.
// reasoning_content is the compatible servers' (vLLM, DeepSeek) visible
// reasoning.
type chatMessage struct {
	Content   *string        `json:"content"`
	Reasoning *string        `json:"reasoning_content"`
	ToolCalls []chatToolCall `json:"tool_calls"`
}

type chatAnswer struct {
	Model   string `json:"model"`
	Choices []struct {
		Index   int         `json:"index"`
		Message chatMessage `json:"message"`
		Delta   chatMessage `json:"delta"`
		Finish  *string     `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage `json:"usage"`
}

func readChat(body []byte) (Turn, error) {
	var a chatAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return Turn{}, unreadable(OpenAIChat, "answer", err)
	}
	t := Turn{Dialect: OpenAIChat, Model: a.Model}
	if a.Usage != nil {
		t.Usage, t.HasUsage = a.Usage.usage(), true
	}
	for _, c := range a.Choices {
		if c.Index == 0 {
			if c.Message.Content != nil {
				addText(&t.Text, *c.Message.Content)
			}
			if c.Message.Reasoning != nil {
				addText(&t.Reasoning, *c.Message.Reasoning)
			}
			if c.Finish != nil {
				t.StopReason = *c.Finish
			}
		}
		for _, tc := range c.Message.ToolCalls {
			call := ToolCall{ID: tc.ID, Name: tc.Function.Name}
			call.setArgs(argsText(tc.Function.Arguments))
			t.ToolCalls = append(t.ToolCalls, call)
		}
	}
	return t, nil
}

// chatStream reads chat.completion.chunk events. A tool call arrives in
// pieces keyed by (choice, index): the first names it, the rest append
// to its arguments.
type chatStream struct {
	t     Turn
	calls map[[2]int]*callBuf
	order [][2]int
}

type callBuf struct {
	id, name string
	args     []byte
	over     bool
}

func (b *callBuf) add(s string) {
	if b.over || len(b.args)+len(s) > MaxArguments {
		b.over, b.args = true, nil
		return
	}
	b.args = append(b.args, s...)
}

func (s *chatStream) event(data []byte) (first bool, err error) {
	if string(data) == "[DONE]" {
		return false, nil
	}
	var a chatAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return false, unreadable(OpenAIChat, "stream chunk", err)
	}
	if a.Model != "" {
		s.t.Model = a.Model
	}
	if a.Usage != nil {
		s.t.Usage, s.t.HasUsage = a.Usage.usage(), true
	}
	for _, c := range a.Choices {
		d := c.Delta
		if c.Index == 0 {
			if d.Content != nil && *d.Content != "" {
				addText(&s.t.Text, *d.Content)
				first = true
			}
			if d.Reasoning != nil && *d.Reasoning != "" {
				addText(&s.t.Reasoning, *d.Reasoning)
				first = true
			}
			if c.Finish != nil {
				s.t.StopReason = *c.Finish
			}
		}
		for _, tc := range d.ToolCalls {
			k := [2]int{c.Index, tc.Index}
			b := s.calls[k]
			if b == nil {
				if s.calls == nil {
					s.calls = map[[2]int]*callBuf{}
				}
				b = &callBuf{}
				s.calls[k] = b
				s.order = append(s.order, k)
				first = true
			}
			if tc.ID != "" {
				b.id = tc.ID
			}
			b.name += tc.Function.Name
			b.add(tc.Function.Arguments)
		}
	}
	return first, nil
}

func (s *chatStream) turn() Turn {
	t := s.t
	t.Dialect, t.Streamed = OpenAIChat, true
	for _, k := range s.order {
		b := s.calls[k]
		call := ToolCall{ID: b.id, Name: b.name, Truncated: b.over}
		if !b.over {
			call.setArgs(argsText(string(b.args)))
		}
		t.ToolCalls = append(t.ToolCalls, call)
	}
	return t
}

// argsText is a tool call's arguments, which OpenAI sends as JSON text
// inside a string: the JSON itself when it is valid, else the text as a
// JSON string (a model can write invalid JSON; it is kept, not lost).
func argsText(s string) []byte {
	if s == "" {
		return []byte("{}")
	}
	if jsontext.Value(s).IsValid() {
		return []byte(s)
	}
	b, _ := jsontext.AppendQuote(nil, s)
	return b
}

// Responses.

type respItem struct {
	Type    string `json:"type"`
	CallID  string `json:"call_id"`
	Name    string `json:"name"`
	Args    string `json:"arguments"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	Summary []struct {
		Text string `json:"text"`
	} `json:"summary"`
}

type respAnswer struct {
	Model      string     `json:"model"`
	Status     string     `json:"status"`
	Output     []respItem `json:"output"`
	Incomplete *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Usage *struct {
		Input    int64 `json:"input_tokens"`
		Output   int64 `json:"output_tokens"`
		InputDet struct {
			Cached int64 `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputDet struct {
			Reasoning int64 `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
	} `json:"usage"`
}

func readResponses(body []byte) (Turn, error) {
	var a respAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return Turn{}, unreadable(OpenAIResponses, "answer", err)
	}
	return a.turn(), nil
}

func (a *respAnswer) turn() Turn {
	t := Turn{Dialect: OpenAIResponses, Model: a.Model, StopReason: a.Status}
	if a.Incomplete != nil && a.Incomplete.Reason != "" {
		t.StopReason = a.Incomplete.Reason
	}
	if u := a.Usage; u != nil {
		t.HasUsage = true
		t.Usage = Usage{Input: u.Input, Output: u.Output, Cached: u.InputDet.Cached, Reasoning: u.OutputDet.Reasoning}
	}
	for _, it := range a.Output {
		t.addItem(&it)
	}
	return t
}

func (t *Turn) addItem(it *respItem) {
	switch it.Type {
	case "message":
		for _, c := range it.Content {
			if c.Type == "output_text" {
				addText(&t.Text, c.Text)
			}
		}
	case "reasoning":
		for _, s := range it.Summary {
			addText(&t.Reasoning, s.Text)
		}
	case "function_call":
		call := ToolCall{ID: it.CallID, Name: it.Name}
		call.setArgs(argsText(it.Args))
		t.ToolCalls = append(t.ToolCalls, call)
	}
}

// respStream reads Responses stream events. The final event
// (response.completed, .incomplete or .failed) carries the whole
// response, which then stands for the turn; until it comes, the turn is
// built from the deltas and the finished items, so a stream cut short
// still says what it carried.
type respStream struct {
	t    Turn
	done bool
}

func (s *respStream) event(data []byte) (first bool, err error) {
	var e struct {
		Type     string      `json:"type"`
		Delta    string      `json:"delta"`
		Item     *respItem   `json:"item"`
		Response *respAnswer `json:"response"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return false, unreadable(OpenAIResponses, "stream event", err)
	}
	switch e.Type {
	case "response.created", "response.in_progress":
		if e.Response != nil && e.Response.Model != "" {
			s.t.Model = e.Response.Model
		}
	case "response.output_text.delta":
		addText(&s.t.Text, e.Delta)
		return e.Delta != "", nil
	case "response.reasoning_summary_text.delta":
		addText(&s.t.Reasoning, e.Delta)
		return e.Delta != "", nil
	case "response.output_item.added":
		return e.Item != nil && e.Item.Type == "function_call", nil
	case "response.output_item.done":
		if e.Item != nil && e.Item.Type == "function_call" {
			s.t.addItem(e.Item)
		}
	case "response.completed", "response.incomplete", "response.failed":
		if e.Response != nil {
			s.t, s.done = e.Response.turn(), true
		}
	}
	return false, nil
}

func (s *respStream) turn() Turn {
	t := s.t
	t.Dialect, t.Streamed = OpenAIResponses, true
	return t
}
