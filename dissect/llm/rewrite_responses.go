package llm

import "fmt"

// Rewriting OpenAI Responses answers (rewrite.go says what and why).

// Responses. A function_call output item is replaced by a message item
// whose one output_text part is the note; nothing says the turn ended on
// tool calls.

// rewriteRespResponse rewrites a Response object's output: known holds
// the verdicts already given, by call_id (a stream's), and takes the new
// ones.
func rewriteRespResponse(o obj, decide Decider, known map[string]Verdict) (changed bool, err error) {
	out, err := o.list("output")
	if err != nil {
		return false, err
	}
	for i, it := range out {
		typ, err := it.str("type")
		if err != nil {
			return false, err
		}
		if !respToolItem(typ) {
			continue
		}
		call, err := respCallOf(it)
		if err != nil {
			return false, err
		}
		v, ok := known[call.key()]
		if !ok {
			v = decideCall(decide, call.ToolCall)
			if known != nil {
				known[call.key()] = v
			}
		}
		if v.Strike {
			out[i] = respNoteItem(call.itemID, v.Note, true)
			changed = true
		}
	}
	if changed {
		o.set("output", out)
	}
	return changed, nil
}

type respCall struct {
	ToolCall
	itemID string
}

func (c respCall) key() string { return c.ID + "\x00" + c.itemID }

// respToolItem reports whether an output item of type typ is a call of
// the agent's tools: a function_call, or a custom_tool_call (free-form
// input instead of JSON arguments).
func respToolItem(typ string) bool { return typ == "function_call" || typ == "custom_tool_call" }

func respCallOf(it obj) (respCall, error) {
	var c respCall
	var err error
	if c.itemID, err = it.str("id"); err != nil {
		return c, err
	}
	if c.ID, err = it.str("call_id"); err != nil {
		return c, err
	}
	if c.Name, err = it.str("name"); err != nil {
		return c, err
	}
	field := "arguments"
	if typ, err := it.str("type"); err != nil {
		return c, err
	} else if typ == "custom_tool_call" {
		field = "input"
	}
	args, err := it.str(field)
	if err != nil {
		return c, err
	}
	if len(args) > maxHeldArgs {
		c.Truncated = true
	} else {
		c.setHeldArgs(argsText(args))
	}
	return c, nil
}

// respNoteItem is the message item that stands for a struck call.
func respNoteItem(callItemID, note string, done bool) obj {
	it := obj{}
	it.set("type", "message")
	it.set("id", "msg_agentg_"+callItemID)
	it.set("role", "assistant")
	if done {
		it.set("status", "completed")
		part := obj{}
		part.set("type", "output_text")
		part.set("text", note)
		part.set("annotations", []obj{})
		it.set("content", []obj{part})
	} else {
		it.set("status", "in_progress")
		it.set("content", []obj{})
	}
	return it
}

// Responses, streamed: a function_call item's events (output_item.added,
// function_call_arguments.delta and .done, output_item.done, by
// output_index) are held until its output_item.done; struck, they are
// replaced by a message item's added, output_text.delta and done events
// carrying the note, with the held events' sequence numbers. An event
// carrying the whole response (response.completed and the like) has its
// output rewritten by the same verdicts.
type respRW struct {
	decide Decider
	open   map[int]*respOpen // by output_index
	known  map[string]Verdict
}

type respOpen struct {
	held [][]byte
	seqs []int
}

func (s *respRW) event(rw *Rewriter, raw, data []byte) error {
	o, err := parseObj(data)
	if err != nil {
		return unreadable(OpenAIResponses, "stream event", err)
	}
	typ, err := o.str("type")
	if err != nil {
		return unreadable(OpenAIResponses, "stream event", err)
	}
	bad := func(err error) error { return unreadable(OpenAIResponses, "stream event "+typ, err) }
	if s.known == nil {
		s.known, s.open = map[string]Verdict{}, map[int]*respOpen{}
	}
	oi, err := o.num("output_index")
	if err != nil {
		return bad(err)
	}
	seq, err := o.num("sequence_number")
	if err != nil {
		return bad(err)
	}
	switch typ {
	case "response.output_item.added", "response.output_item.done":
		it, err := o.obj("item")
		if err != nil || it == nil {
			return bad(err)
		}
		it2, err := it.str("type")
		if err != nil {
			return bad(err)
		}
		if !respToolItem(it2) {
			break
		}
		op := s.open[oi]
		if op == nil {
			op = &respOpen{}
			s.open[oi] = op
		}
		if !rw.hold(&op.held, raw) {
			return bad(fmt.Errorf("a tool call's events passed %d bytes", maxHeld))
		}
		op.seqs = append(op.seqs, seq)
		if typ == "response.output_item.added" {
			return nil
		}
		call, err := respCallOf(it)
		if err != nil {
			return bad(err)
		}
		delete(s.open, oi)
		rw.release(op.held)
		v, ok := s.known[call.key()]
		if !ok {
			v = decideCall(s.decide, call.ToolCall)
			s.known[call.key()] = v
		}
		if !v.Strike {
			for _, b := range op.held {
				rw.emit(b)
			}
			return nil
		}
		rw.struck++
		msgID := "msg_agentg_" + call.itemID
		ev := obj{}
		ev.set("type", "response.output_item.added")
		ev.set("sequence_number", op.seqs[0])
		ev.set("output_index", oi)
		ev.set("item", respNoteItem(call.itemID, "", false))
		rw.emitEvent("response.output_item.added", ev.marshal())
		if len(op.seqs) >= 3 {
			ev = obj{}
			ev.set("type", "response.output_text.delta")
			ev.set("sequence_number", op.seqs[1])
			ev.set("item_id", msgID)
			ev.set("output_index", oi)
			ev.set("content_index", 0)
			ev.set("delta", v.Note)
			ev.set("logprobs", []obj{})
			rw.emitEvent("response.output_text.delta", ev.marshal())
		}
		ev = obj{}
		ev.set("type", "response.output_item.done")
		ev.set("sequence_number", op.seqs[len(op.seqs)-1])
		ev.set("output_index", oi)
		ev.set("item", respNoteItem(call.itemID, v.Note, true))
		rw.emitEvent("response.output_item.done", ev.marshal())
		return nil
	case "response.function_call_arguments.delta", "response.function_call_arguments.done",
		"response.custom_tool_call_input.delta", "response.custom_tool_call_input.done":
		// Held even before the call's item was added: a call's
		// arguments never pass ahead of its decision.
		op := s.open[oi]
		if op == nil {
			op = &respOpen{}
			s.open[oi] = op
		}
		if !rw.hold(&op.held, raw) {
			return bad(fmt.Errorf("a tool call's events passed %d bytes", maxHeld))
		}
		op.seqs = append(op.seqs, seq)
		return nil
	}
	if resp, err := o.obj("response"); err != nil {
		return bad(err)
	} else if resp != nil {
		changed, err := rewriteRespResponse(resp, s.decide, s.known)
		if err != nil {
			return bad(err)
		}
		if changed {
			o.set("response", resp)
			rw.emitEvent(typ, o.marshal())
			return nil
		}
	}
	rw.emit(raw)
	return nil
}

func (s *respRW) end(rw *Rewriter) error {
	for _, op := range s.open {
		rw.release(op.held) // never completed: never sent
	}
	s.open = nil
	return nil
}
