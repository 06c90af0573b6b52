package llm

import (
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

// Rewriting Anthropic Messages answers (rewrite.go says what and why). A
// struck tool_use block becomes a text block holding the note, at the
// same place, so no other block's index moves; stop_reason "tool_use"
// becomes "end_turn" when no tool_use block remains. server_tool_use
// blocks are the provider's own tools, run at the provider, not the
// agent's: they are left alone.

func rewriteAnthAnswer(o obj, decide Decider) (changed bool, err error) {
	blocks, err := o.list("content")
	if err != nil {
		return false, err
	}
	kept := 0
	for i, b := range blocks {
		typ, err := b.str("type")
		if err != nil {
			return false, err
		}
		if typ != "tool_use" {
			continue
		}
		call, err := anthCallOf(b)
		if err != nil {
			return false, err
		}
		if input, err := b.raw("input"); err != nil {
			return false, err
		} else {
			call.setHeldArgs(anthInput(input))
		}
		if v := decideCall(decide, call); v.Strike {
			blocks[i] = anthTextBlock(v.Note)
			changed = true
			continue
		}
		kept++
	}
	if !changed {
		return false, nil
	}
	o.set("content", blocks)
	if stop, err := o.str("stop_reason"); err != nil {
		return false, err
	} else if stop == "tool_use" && kept == 0 {
		o.set("stop_reason", "end_turn")
	}
	return true, nil
}

func anthCallOf(b obj) (ToolCall, error) {
	var c ToolCall
	var err error
	if c.ID, err = b.str("id"); err != nil {
		return c, err
	}
	c.Name, err = b.str("name")
	return c, err
}

func anthInput(v jsontext.Value) []byte {
	if len(v) == 0 {
		return []byte("{}")
	}
	return v
}

func anthTextBlock(text string) obj {
	b := obj{}
	b.set("type", "text")
	b.set("text", text)
	return b
}

// Streamed: a tool_use block's events, content_block_start to
// content_block_stop, are held; struck, they are replaced by a text
// block's start, one text_delta with the note, and stop, at the same
// index.
type anthRW struct {
	decide          Decider
	open            map[int]*anthHeld
	started         map[int]bool // blocks other than tool_use that started
	allowed, struck int
}

type anthHeld struct {
	held  [][]byte
	call  ToolCall
	input jsontext.Value // the start's input
	args  []byte         // partial_json so far
	over  bool
}

func (s *anthRW) event(rw *Rewriter, raw, data []byte) error {
	o, err := parseObj(data)
	if err != nil {
		return unreadable(AnthropicMessages, "stream event", err)
	}
	typ, err := o.str("type")
	if err != nil {
		return unreadable(AnthropicMessages, "stream event", err)
	}
	bad := func(err error) error { return unreadable(AnthropicMessages, "stream event "+typ, err) }
	switch typ {
	case "content_block_start", "content_block_delta", "content_block_stop":
		idx, err := o.num("index")
		if err != nil {
			return bad(err)
		}
		op := s.open[idx]
		if typ == "content_block_start" {
			b, err := o.obj("content_block")
			if err != nil || b == nil {
				return bad(err)
			}
			bt, err := b.str("type")
			if err != nil {
				return bad(err)
			}
			if bt != "tool_use" {
				if s.started == nil {
					s.started = map[int]bool{}
				}
				s.started[idx] = true
				break
			}
			if op != nil {
				return bad(fmt.Errorf("block %d started twice", idx))
			}
			op = &anthHeld{}
			if op.call, err = anthCallOf(b); err != nil {
				return bad(err)
			}
			if op.input, err = b.raw("input"); err != nil {
				return bad(err)
			}
			if s.open == nil {
				s.open = map[int]*anthHeld{}
			}
			s.open[idx] = op
		}
		if op == nil {
			if !s.started[idx] {
				// An event for a block that never started could be
				// a tool_use's input: not handed on unchecked.
				return bad(fmt.Errorf("an event for block %d, which never started", idx))
			}
			break
		}
		if !rw.hold(&op.held, raw) {
			return bad(fmt.Errorf("a tool call's events passed %d bytes", maxHeld))
		}
		switch typ {
		case "content_block_delta":
			d, err := o.obj("delta")
			if err != nil || d == nil {
				return bad(err)
			}
			part, err := d.str("partial_json")
			if err != nil {
				return bad(err)
			}
			if len(op.args)+len(part) > maxHeldArgs {
				op.over, op.args = true, nil
			} else if !op.over {
				op.args = append(op.args, part...)
			}
		case "content_block_stop":
			delete(s.open, idx)
			rw.release(op.held)
			call := op.call
			switch {
			case op.over:
				call.Truncated = true
			case len(op.args) > 0:
				call.setHeldArgs(op.args)
			default:
				call.setHeldArgs(anthInput(op.input))
			}
			v := decideCall(s.decide, call)
			if !v.Strike {
				s.allowed++
				for _, b := range op.held {
					rw.emit(b)
				}
				return nil
			}
			s.struck++
			rw.struck++
			ev := obj{}
			ev.set("type", "content_block_start")
			ev.set("index", idx)
			ev.set("content_block", anthTextBlock(""))
			rw.emitEvent("content_block_start", ev.marshal())
			ev = obj{}
			ev.set("type", "content_block_delta")
			ev.set("index", idx)
			d := obj{}
			d.set("type", "text_delta")
			d.set("text", v.Note)
			ev.set("delta", d)
			rw.emitEvent("content_block_delta", ev.marshal())
			ev = obj{}
			ev.set("type", "content_block_stop")
			ev.set("index", idx)
			rw.emitEvent("content_block_stop", ev.marshal())
		}
		return nil
	case "message_delta":
		d, err := o.obj("delta")
		if err != nil {
			return bad(err)
		}
		if d != nil && s.struck > 0 && s.allowed == 0 {
			if stop, err := d.str("stop_reason"); err != nil {
				return bad(err)
			} else if stop == "tool_use" {
				d.set("stop_reason", "end_turn")
				o.set("delta", d)
				rw.emitEvent(typ, o.marshal())
				return nil
			}
		}
	}
	rw.emit(raw)
	return nil
}

func (s *anthRW) end(rw *Rewriter) error {
	for _, op := range s.open {
		rw.release(op.held) // never completed: never sent
	}
	s.open = nil
	return nil
}
