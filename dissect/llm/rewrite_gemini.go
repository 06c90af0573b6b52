package llm

// Rewriting Gemini answers (rewrite.go says what and why). A struck
// functionCall part becomes a text part holding the note. Gemini's
// finishReason is STOP whether or not the turn asks for tools, so it
// stays. A streamed answer's chunks are each a whole response whose
// function calls come whole, so each chunk is rewritten on its own and
// nothing is held.

func rewriteGemini(o obj, decide Decider) (changed bool, err error) {
	cands, err := o.list("candidates")
	if err != nil {
		return false, err
	}
	for _, c := range cands {
		content, err := c.obj("content")
		if err != nil || content == nil {
			if err != nil {
				return false, err
			}
			continue
		}
		parts, err := content.list("parts")
		if err != nil {
			return false, err
		}
		struck := false
		for i, p := range parts {
			fc, err := p.obj("functionCall")
			if err != nil {
				return false, err
			}
			if fc == nil {
				continue
			}
			var call ToolCall
			if call.ID, err = fc.str("id"); err != nil {
				return false, err
			}
			if call.Name, err = fc.str("name"); err != nil {
				return false, err
			}
			args, err := fc.raw("args")
			if err != nil {
				return false, err
			}
			call.setHeldArgs(anthInput(args))
			if v := decideCall(decide, call); v.Strike {
				np := obj{}
				np.set("text", v.Note)
				parts[i] = np
				struck = true
			}
		}
		if struck {
			content.set("parts", parts)
			c.set("content", content)
			changed = true
		}
	}
	if changed {
		o.set("candidates", cands)
	}
	return changed, nil
}

type gemRW struct{ decide Decider }

func (s *gemRW) event(rw *Rewriter, raw, data []byte) error {
	o, err := parseObj(data)
	if err != nil {
		return unreadable(Gemini, "stream chunk", err)
	}
	before := rw.struck
	changed, err := rewriteGemini(o, func(c ToolCall) Verdict {
		v := s.decide(c)
		if v.Strike {
			rw.struck++
		}
		return v
	})
	if err != nil {
		return unreadable(Gemini, "stream chunk", err)
	}
	if !changed || rw.struck == before {
		rw.emit(raw)
		return nil
	}
	rw.emitEvent("", o.marshal())
	return nil
}

func (s *gemRW) end(*Rewriter) error { return nil }
