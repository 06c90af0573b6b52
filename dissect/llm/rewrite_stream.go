package llm

import (
	"bytes"
	"fmt"
	"io"
)

// Rewriter applies the tool-use guard to a streamed (text/event-stream)
// answer on its way to the client. Every event passes through as it
// comes, byte for byte, except a tool call's own events: those are held
// until the call is complete (its arguments whole), then either sent as
// they came (allowed) or replaced by valid events of the dialect that
// carry the Decider's note (struck). An event that says the turn ended
// on tool calls is rewritten when none remain.
//
// The stream is cut into events exactly as the WHATWG event-stream rules
// and the SDKs cut it (lines end at CRLF, LF or CR; an event at a blank
// line), byte by byte, so how the bytes arrive in Writes never changes
// what is sent. An event is sent once it is whole: a client cannot act on
// part of one. What cannot be read fails closed: Write returns the
// error, nothing more is sent, and the caller ends the stream.
//
// Memory is bounded: one event at most MaxEvent bytes, and what is held
// for the calls in progress at most maxHeld bytes; a call that would pass
// it is struck (its events dropped, the note sent in its place).
type Rewriter struct {
	w       io.Writer
	h       streamRewriter
	dialect Dialect

	raw       []byte // the event being read, as it came
	lineStart int    // where the line being read starts in raw
	lastCR    bool   // the last byte was a CR: an LF right after it ends no line
	data      []byte // the event's data lines, joined with "\n" (reused)
	held      int    // bytes held for calls in progress
	err       error
	struck    int // calls struck so far
}

// maxHeld bounds what a Rewriter holds for the tool calls in progress.
const maxHeld = 4 << 20

// streamRewriter is one dialect's rewriting of a stream's events.
type streamRewriter interface {
	// event handles one whole event: raw is its bytes as they came (the
	// Rewriter's buffer: copy what is kept), data its data lines joined.
	event(rw *Rewriter, raw, data []byte) error
	// end is the end of the stream: calls still open are never sent.
	end(rw *Rewriter) error
}

// NewRewriter returns a Rewriter of dialect d's streams writing to w.
func NewRewriter(d Dialect, w io.Writer, decide Decider) *Rewriter {
	rw := &Rewriter{w: w, dialect: d}
	switch d {
	case OpenAIChat:
		rw.h = &chatRW{decide: decide}
	case OpenAIResponses:
		rw.h = &respRW{decide: decide}
	case AnthropicMessages:
		rw.h = &anthRW{decide: decide}
	case Gemini:
		rw.h = &gemRW{decide: decide}
	default:
		rw.err = unreadable(d, "stream", nil)
	}
	return rw
}

// Struck is how many tool calls were struck so far.
func (rw *Rewriter) Struck() int { return rw.struck }

// Write reads p, a part of the upstream's stream, and sends on what may
// be sent. It returns len(p) and nil, or the error that ended the
// rewriting (the client's write failed, or an event could not be read).
func (rw *Rewriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && rw.err == nil {
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			rw.grow(p)
			break
		}
		c := p[i]
		rw.grow(p[:i+1])
		p = p[i+1:]
		if rw.lastCR && c == '\n' && i == 0 {
			// The LF of a CRLF: the line already ended at the CR.
			rw.lastCR = false
			rw.lineStart = len(rw.raw)
			continue
		}
		rw.lastCR = c == '\r'
		if len(rw.raw)-1 == rw.lineStart {
			rw.dispatch()
			continue
		}
		rw.lineStart = len(rw.raw)
	}
	if rw.err != nil {
		return n, rw.err
	}
	return n, nil
}

func (rw *Rewriter) grow(b []byte) {
	if rw.err != nil {
		return
	}
	if len(rw.raw)+len(b) > MaxEvent {
		rw.err = fmt.Errorf("%w (%d bytes)", ErrEventTooLarge, MaxEvent)
		return
	}
	if len(b) > 0 && rw.lastCR && b[0] != '\n' {
		rw.lastCR = false
	}
	rw.raw = append(rw.raw, b...)
}

// dispatch hands the whole event in raw to the dialect.
func (rw *Rewriter) dispatch() {
	raw := rw.raw
	defer func() {
		// Whatever the dialect keeps it copied: the buffer is reused.
		rw.raw, rw.lineStart = raw[:0], 0
		if cap(raw) > 64<<10 {
			rw.raw = nil
		}
	}()
	data, ok := eventData(raw, rw.data[:0])
	rw.data = data
	if !ok {
		// No data: a comment, a keep-alive, an event naming only its
		// type; nothing in it can ask for a tool.
		rw.emit(raw)
		return
	}
	if err := rw.h.event(rw, raw, data); err != nil && rw.err == nil {
		rw.err = err
	}
}

// eventData appends the data lines of the event raw to dst, joined with
// "\n", as the event-stream rules read them; ok is false when there are
// none.
func eventData(raw, dst []byte) (data []byte, ok bool) {
	for len(raw) > 0 {
		i := bytes.IndexAny(raw, "\r\n")
		line := raw
		if i >= 0 {
			line = raw[:i]
			if raw[i] == '\r' && i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			raw = raw[i+1:]
		} else {
			raw = nil
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if string(name) != "data" {
			continue
		}
		if ok {
			dst = append(dst, '\n')
		}
		dst = append(dst, bytes.TrimPrefix(value, []byte(" "))...)
		ok = true
	}
	return dst, ok
}

// Close ends the stream: an event the stream ended in the middle of is
// read as if a blank line had ended it (as the SDKs read it), and calls
// still open are dropped, never sent.
func (rw *Rewriter) Close() error {
	if rw.err == nil && len(rw.raw) > 0 {
		rw.dispatch()
	}
	if rw.err == nil {
		if err := rw.h.end(rw); err != nil {
			rw.err = err
		}
	}
	return rw.err
}

// emit sends b to the client.
func (rw *Rewriter) emit(b []byte) {
	if rw.err != nil || len(b) == 0 {
		return
	}
	if _, err := rw.w.Write(b); err != nil {
		rw.err = err
	}
}

// emitEvent sends one event of the rewriter's own making: its type line
// when typ is set, then its data on one line.
func (rw *Rewriter) emitEvent(typ string, data []byte) {
	b := make([]byte, 0, len(typ)+len(data)+16)
	if typ != "" {
		b = append(append(append(b, "event: "...), typ...), '\n')
	}
	b = append(append(append(b, "data: "...), data...), "\n\n"...)
	rw.emit(b)
}

// hold copies raw into held, counted against maxHeld; false when it
// would pass the bound.
func (rw *Rewriter) hold(held *[][]byte, raw []byte) bool {
	if rw.held+len(raw) > maxHeld {
		return false
	}
	rw.held += len(raw)
	*held = append(*held, bytes.Clone(raw))
	return true
}

// release forgets held events from the count.
func (rw *Rewriter) release(held [][]byte) {
	for _, b := range held {
		rw.held -= len(b)
	}
}
