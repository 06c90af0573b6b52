package llm

import (
	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Anthropic Messages, as the API reference documents it and
// anthropic-sdk-go reads it.

// anthUsage: input_tokens counts only the prompt tokens after the last
// cache breakpoint; the cached ones read and written are counted apart,
// so Usage.Input is their sum.
type anthUsage struct {
	Input      *int64 `json:"input_tokens"`
	Output     *int64 `json:"output_tokens"`
	CacheWrite *int64 `json:"cache_creation_input_tokens"`
	CacheRead  *int64 `json:"cache_read_input_tokens"`
}

// merge applies the counts u carries to *raw: a stream's message_start
// carries them all, its message_delta the ones that changed.
func (u *anthUsage) merge(raw *anthUsage) {
	for _, f := range [...]struct{ from, to **int64 }{
		{&u.Input, &raw.Input}, {&u.Output, &raw.Output}, {&u.CacheWrite, &raw.CacheWrite}, {&u.CacheRead, &raw.CacheRead},
	} {
		if *f.from != nil {
			*f.to = *f.from
		}
	}
}

func (u *anthUsage) usage() Usage {
	n := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	return Usage{
		Input:      n(u.Input) + n(u.CacheWrite) + n(u.CacheRead),
		Output:     n(u.Output),
		Cached:     n(u.CacheRead),
		CacheWrite: n(u.CacheWrite),
	}
}

type anthBlock struct {
	Type     string         `json:"type"`
	Text     string         `json:"text"`
	Thinking string         `json:"thinking"`
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Input    jsontext.Value `json:"input"`
}

type anthMessage struct {
	Model      string      `json:"model"`
	Content    []anthBlock `json:"content"`
	StopReason *string     `json:"stop_reason"`
	Usage      *anthUsage  `json:"usage"`
}

func readAnthropic(body []byte) (Turn, error) {
	var m anthMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return Turn{}, unreadable(AnthropicMessages, "answer", err)
	}
	t := Turn{Dialect: AnthropicMessages, Model: m.Model}
	if m.StopReason != nil {
		t.StopReason = *m.StopReason
	}
	if m.Usage != nil {
		t.Usage, t.HasUsage = m.Usage.usage(), true
	}
	for i := range m.Content {
		t.addBlock(&m.Content[i], m.Content[i].Input)
	}
	return t, nil
}

// addBlock adds one content block; input is a tool_use block's input.
func (t *Turn) addBlock(b *anthBlock, input []byte) {
	switch b.Type {
	case "text":
		addText(&t.Text, b.Text)
	case "thinking":
		addText(&t.Reasoning, b.Thinking)
	case "tool_use", "server_tool_use":
		call := ToolCall{ID: b.ID, Name: b.Name}
		if len(input) == 0 {
			input = []byte("{}")
		}
		call.setArgs(input)
		t.ToolCalls = append(t.ToolCalls, call)
	}
}

// anthStream reads the stream's events (message_start, content_block_*,
// message_delta, message_stop; ping and error pass unread). A tool_use
// block's input arrives as input_json_delta pieces of JSON text.
type anthStream struct {
	t      Turn
	usage  anthUsage
	blocks map[int]*anthOpen
}

type anthOpen struct {
	block anthBlock
	args  callBuf
}

func (s *anthStream) event(data []byte) (first bool, err error) {
	var e struct {
		Type    string       `json:"type"`
		Index   int          `json:"index"`
		Message *anthMessage `json:"message"`
		Block   *anthBlock   `json:"content_block"`
		Delta   *struct {
			Type        string  `json:"type"`
			Text        string  `json:"text"`
			Thinking    string  `json:"thinking"`
			PartialJSON string  `json:"partial_json"`
			StopReason  *string `json:"stop_reason"`
		} `json:"delta"`
		Usage *anthUsage `json:"usage"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return false, unreadable(AnthropicMessages, "stream event", err)
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil {
			s.t.Model = e.Message.Model
			if e.Message.Usage != nil {
				e.Message.Usage.merge(&s.usage)
				s.t.HasUsage = true
			}
		}
	case "content_block_start":
		if e.Block == nil {
			return false, unreadable(AnthropicMessages, "stream event: content_block_start without content_block", nil)
		}
		if s.blocks == nil {
			s.blocks = map[int]*anthOpen{}
		}
		s.blocks[e.Index] = &anthOpen{block: *e.Block}
		return e.Block.Type == "tool_use" || e.Block.Text != "", nil
	case "content_block_delta":
		b := s.blocks[e.Index]
		if b == nil || e.Delta == nil {
			return false, unreadable(AnthropicMessages, "stream event: a delta for no open block", nil)
		}
		switch e.Delta.Type {
		case "text_delta":
			b.block.Text += e.Delta.Text
			return e.Delta.Text != "", nil
		case "thinking_delta":
			b.block.Thinking += e.Delta.Thinking
			return e.Delta.Thinking != "", nil
		case "input_json_delta":
			b.args.add(e.Delta.PartialJSON)
		}
	case "content_block_stop":
		b := s.blocks[e.Index]
		if b == nil {
			return false, unreadable(AnthropicMessages, "stream event: stop of no open block", nil)
		}
		delete(s.blocks, e.Index)
		if b.args.over {
			s.t.ToolCalls = append(s.t.ToolCalls, ToolCall{ID: b.block.ID, Name: b.block.Name, Truncated: true})
			break
		}
		input := b.args.args
		if len(input) == 0 {
			input = b.block.Input
		}
		s.t.addBlock(&b.block, input)
	case "message_delta":
		if e.Delta != nil && e.Delta.StopReason != nil {
			s.t.StopReason = *e.Delta.StopReason
		}
		if e.Usage != nil {
			e.Usage.merge(&s.usage)
			s.t.HasUsage = true
		}
	}
	return false, nil
}

func (s *anthStream) turn() Turn {
	t := s.t
	t.Dialect, t.Streamed = AnthropicMessages, true
	t.Usage = s.usage.usage()
	return t
}
