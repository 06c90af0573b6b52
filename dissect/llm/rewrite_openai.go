package llm

import (
	"fmt"
	"strings"
)

// Rewriting OpenAI Chat Completions answers (rewrite.go says what and
// why; rewrite_responses.go rewrites Responses).

// Chat Completions, whole: a struck call leaves message.tool_calls, its
// note joins message.content, and finish_reason "tool_calls" becomes
// "stop" when no call of the choice remains.
func rewriteChatAnswer(o obj, decide Decider) (changed bool, err error) {
	choices, err := o.list("choices")
	if err != nil {
		return false, err
	}
	for _, c := range choices {
		msg, err := c.obj("message")
		if err != nil || msg == nil {
			return false, err
		}
		if ch, err := rewriteLegacyCall(c, msg, decide); err != nil {
			return false, err
		} else if ch {
			changed = true
			c.set("message", msg)
		}
		tcs, err := msg.list("tool_calls")
		if err != nil || len(tcs) == 0 {
			if err != nil {
				return false, err
			}
			continue
		}
		var kept []obj
		var notes []string
		for _, tc := range tcs {
			call, err := chatCallOf(tc)
			if err != nil {
				return false, err
			}
			call.setHeldArgs(argsText(call.argText))
			if v := decideCall(decide, call.ToolCall); v.Strike {
				notes = append(notes, v.Note)
				continue
			}
			kept = append(kept, tc)
		}
		if len(notes) == 0 {
			continue
		}
		changed = true
		if len(kept) == 0 {
			delete(msg, "tool_calls")
			if f, err := c.str("finish_reason"); err != nil {
				return false, err
			} else if f == "tool_calls" {
				c.set("finish_reason", "stop")
			}
		} else {
			msg.set("tool_calls", kept)
		}
		text, err := msg.str("content")
		if err != nil {
			return false, err
		}
		msg.set("content", joinNote(text, strings.Join(notes, "\n")))
		c.set("message", msg)
	}
	if changed {
		o.set("choices", choices)
	}
	return changed, nil
}

// rewriteLegacyCall decides the deprecated message.function_call, which
// the SDKs still read and a compatible server may still send: struck,
// it leaves, its note joins the content, and finish_reason
// "function_call" becomes "stop".
func rewriteLegacyCall(c, msg obj, decide Decider) (changed bool, err error) {
	fn, err := msg.obj("function_call")
	if err != nil || fn == nil {
		return false, err
	}
	var call ToolCall
	if call.Name, err = fn.str("name"); err != nil {
		return false, err
	}
	args, err := fn.str("arguments")
	if err != nil {
		return false, err
	}
	call.setHeldArgs(argsText(args))
	v := decideCall(decide, call)
	if !v.Strike {
		return false, nil
	}
	delete(msg, "function_call")
	text, err := msg.str("content")
	if err != nil {
		return false, err
	}
	msg.set("content", joinNote(text, v.Note))
	if f, err := c.str("finish_reason"); err != nil {
		return false, err
	} else if f == "function_call" {
		c.set("finish_reason", "stop")
	}
	return true, nil
}

func joinNote(text, note string) string {
	if text == "" {
		return note
	}
	return text + "\n" + note
}

// chatCallPart is one entry of a tool_calls list, whole or a delta.
type chatCallPart struct {
	ToolCall
	index   int
	argText string
}

func chatCallOf(tc obj) (chatCallPart, error) {
	var p chatCallPart
	var err error
	if p.index, err = tc.num("index"); err != nil {
		return p, err
	}
	if p.ID, err = tc.str("id"); err != nil {
		return p, err
	}
	fn, err := tc.obj("function")
	if err != nil || fn == nil {
		return p, err
	}
	if p.Name, err = fn.str("name"); err != nil {
		return p, err
	}
	p.argText, err = fn.str("arguments")
	return p, err
}

// Chat Completions, streamed. A call's deltas (choices[].delta.tool_calls
// entries with one index) are held until the call is complete: a delta
// for a later index of the same choice, the choice's finish_reason, or
// [DONE]. Held chunks go out in order once every call they carry is
// decided: as they came when all are allowed and keep their index, else
// with the struck entries removed (the note in the content of the chunk
// that opened the call) and the others renumbered, so the SDK's
// accumulator sees calls 0..n-1 with no gap.
type chatRW struct {
	decide Decider
	calls  map[[2]int]*chatStreamCall // by choice, index
	open   map[int][]int              // choice → open call indexes
	held   []*chatHeld
	next   map[int]int // choice → the next index an allowed call gets
	struck map[int]int // choice → calls struck
}

type chatStreamCall struct {
	id, name string
	args     []byte
	over     bool
	done     bool
	v        Verdict
	newIndex int
	noted    bool
}

type chatHeld struct {
	raw  []byte
	o    obj
	keys [][2]int
}

func (s *chatRW) event(rw *Rewriter, raw, data []byte) error {
	if string(data) == "[DONE]" {
		for c := range s.open {
			s.complete(rw, c, false)
		}
		s.flush(rw)
		rw.emit(raw)
		return nil
	}
	o, err := parseObj(data)
	if err != nil {
		return unreadable(OpenAIChat, "stream chunk", err)
	}
	choices, err := o.list("choices")
	if err != nil {
		return unreadable(OpenAIChat, "stream chunk", err)
	}
	var keys [][2]int
	var finished []int
	for _, c := range choices {
		ci, err := c.num("index")
		if err != nil {
			return unreadable(OpenAIChat, "stream chunk", err)
		}
		d, err := c.obj("delta")
		if err != nil {
			return unreadable(OpenAIChat, "stream chunk", err)
		}
		if d != nil {
			if fc, err := d.raw("function_call"); err != nil || fc != nil {
				// The deprecated form streams one call with no id or
				// index to hold it by: it is not handed on unchecked.
				return unreadable(OpenAIChat, "stream chunk", fmt.Errorf("a deprecated function_call delta, which the tool-use guard does not hold"))
			}
			tcs, err := d.list("tool_calls")
			if err != nil {
				return unreadable(OpenAIChat, "stream chunk", err)
			}
			for _, tc := range tcs {
				p, err := chatCallOf(tc)
				if err != nil {
					return unreadable(OpenAIChat, "stream chunk", err)
				}
				k := [2]int{ci, p.index}
				call := s.calls[k]
				if call == nil {
					// A new call: the choice's open ones with another
					// index are complete (calls stream one after another).
					s.complete(rw, ci, false)
					if s.calls == nil {
						s.calls, s.open = map[[2]int]*chatStreamCall{}, map[int][]int{}
					}
					call = &chatStreamCall{}
					s.calls[k] = call
					s.open[ci] = append(s.open[ci], p.index)
				} else if call.done {
					return unreadable(OpenAIChat, "stream chunk", fmt.Errorf("a delta for tool call %d after it was complete", p.index))
				}
				if p.ID != "" {
					call.id = p.ID
				}
				call.name += p.Name
				if len(call.args)+len(p.argText) > maxHeldArgs {
					call.over, call.args = true, nil
				} else if !call.over {
					call.args = append(call.args, p.argText...)
				}
				if !slicesContains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
		if f, err := c.str("finish_reason"); err != nil {
			return unreadable(OpenAIChat, "stream chunk", err)
		} else if f != "" {
			finished = append(finished, ci)
		}
	}
	if len(keys) > 0 {
		var held [][]byte
		if !rw.hold(&held, raw) {
			return unreadable(OpenAIChat, "stream", fmt.Errorf("the tool calls in progress passed %d bytes", maxHeld))
		}
		s.held = append(s.held, &chatHeld{raw: held[0], o: o, keys: keys})
	}
	for _, ci := range finished {
		s.complete(rw, ci, false)
	}
	s.flush(rw)
	if len(keys) == 0 {
		s.send(rw, raw, o, nil)
	}
	return nil
}

func slicesContains(ks [][2]int, k [2]int) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// complete decides every open call of choice ci; incomplete ones (the
// stream ended first) are struck unasked.
func (s *chatRW) complete(rw *Rewriter, ci int, incomplete bool) {
	for _, ti := range s.open[ci] {
		c := s.calls[[2]int{ci, ti}]
		tc := ToolCall{ID: c.id, Name: c.name, Truncated: c.over || incomplete}
		if !c.over {
			tc.setHeldArgs(argsText(string(c.args)))
		}
		c.v, c.done, c.args = decideCall(s.decide, tc), true, nil
		if s.next == nil {
			s.next, s.struck = map[int]int{}, map[int]int{}
		}
		if c.v.Strike {
			s.struck[ci]++
			rw.struck++
		} else {
			c.newIndex = s.next[ci]
			s.next[ci]++
		}
	}
	delete(s.open, ci)
}

// flush sends the held chunks, in order, whose calls are all decided.
func (s *chatRW) flush(rw *Rewriter) {
	for len(s.held) > 0 {
		h := s.held[0]
		for _, k := range h.keys {
			if !s.calls[k].done {
				return
			}
		}
		s.held = s.held[1:]
		if h.raw != nil {
			rw.release([][]byte{h.raw})
		}
		s.send(rw, h.raw, h.o, h.keys)
	}
}

// send sends one chunk: as it came (raw) when nothing in it changes.
func (s *chatRW) send(rw *Rewriter, raw []byte, o obj, keys [][2]int) {
	change := raw == nil
	for _, k := range keys {
		c := s.calls[k]
		if c.v.Strike || c.newIndex != k[1] {
			change = true
		}
	}
	choices, _ := o.list("choices") // read once already
	for _, c := range choices {
		ci, _ := c.num("index")
		if f, _ := c.str("finish_reason"); f == "tool_calls" && s.struck[ci] > 0 && s.next[ci] == 0 {
			change = true
		}
	}
	if !change {
		rw.emit(raw)
		return
	}
	for _, c := range choices {
		ci, _ := c.num("index")
		if d, _ := c.obj("delta"); d != nil {
			tcs, _ := d.list("tool_calls")
			if tcs != nil {
				var kept []obj
				var notes []string
				for _, tc := range tcs {
					ti, _ := tc.num("index")
					call := s.calls[[2]int{ci, ti}]
					if call.v.Strike {
						if !call.noted {
							call.noted = true
							notes = append(notes, call.v.Note)
						}
						continue
					}
					if call.newIndex != ti {
						tc.set("index", call.newIndex)
					}
					kept = append(kept, tc)
				}
				if len(kept) == 0 {
					delete(d, "tool_calls")
				} else {
					d.set("tool_calls", kept)
				}
				if len(notes) > 0 {
					text, _ := d.str("content")
					d.set("content", joinNote(text, strings.Join(notes, "\n")))
				}
				c.set("delta", d)
			}
		}
		if f, _ := c.str("finish_reason"); f == "tool_calls" && s.struck[ci] > 0 && s.next[ci] == 0 {
			c.set("finish_reason", "stop")
		}
	}
	o.set("choices", choices)
	rw.emitEvent("", o.marshal())
}

func (s *chatRW) end(rw *Rewriter) error {
	// The stream ended before its calls did (no finish_reason, no
	// [DONE]): what arrived of them cannot be checked whole, so they are
	// struck, the text around them sent.
	for ci := range s.open {
		s.complete(rw, ci, true)
	}
	s.flush(rw)
	return nil
}
