package llm

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// ReadAnswer reads a whole answer (one JSON body, not an event stream).
func ReadAnswer(d Dialect, body []byte) (Turn, error) {
	switch d {
	case OpenAIChat:
		return readChat(body)
	case OpenAIResponses:
		return readResponses(body)
	case AnthropicMessages:
		return readAnthropic(body)
	case Gemini:
		return readGemini(body)
	}
	return Turn{}, unreadable(d, "answer", nil)
}

// MaxEvent bounds one event of a streamed answer. A longer one ends the
// reading (Stream.Turn says why); the stream itself passes on unharmed.
const MaxEvent = 1 << 20

// ErrEventTooLarge: an event of a streamed answer passed MaxEvent.
var ErrEventTooLarge = errors.New("llm: streamed event larger than the limit")

// dialectStream is one dialect's reading of a stream's events.
type dialectStream interface {
	// event reads one event's data; first reports that it carried the
	// answer's output (text, reasoning, a tool call).
	event(data []byte) (first bool, err error)
	turn() Turn
}

// Stream reads a text/event-stream answer from a copy of its bytes, as
// they pass: Write never fails and never blocks, so it can sit beside
// the copy to the client (io.TeeReader, io.MultiWriter) without holding a
// token back. Lines end at CRLF, LF or CR and events at a blank line, as
// the WHATWG event-stream rules and the SDKs say; only data lines matter
// (every dialect puts the event's type in its data). Once an event cannot
// be read, the reading stops and Turn reports the error: what was read
// stays read, nothing is guessed.
type Stream struct {
	d       dialectStream
	dialect Dialect
	now     func() time.Time

	line    []byte // the line being read
	data    []byte // the event's data lines so far, joined with "\n"
	hasData bool
	lastCR  bool // the last byte was a CR: an LF right after it is part of that line end
	err     error
	first   time.Time
}

// NewStream reads a streamed answer of dialect d.
func NewStream(d Dialect) *Stream {
	s := &Stream{dialect: d, now: time.Now}
	switch d {
	case OpenAIChat:
		s.d = &chatStream{}
	case OpenAIResponses:
		s.d = &respStream{}
	case AnthropicMessages:
		s.d = &anthStream{}
	case Gemini:
		s.d = &gemStream{}
	default:
		s.err = unreadable(d, "stream", nil)
	}
	return s
}

// Write reads p, a part of the stream. It always returns len(p), nil.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.err == nil {
		if s.lastCR && p[0] == '\n' {
			p = p[1:]
		}
		s.lastCR = false
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			s.grow(p)
			break
		}
		s.grow(p[:i])
		s.lastCR = p[i] == '\r'
		p = p[i+1:]
		s.endLine()
	}
	return n, nil
}

func (s *Stream) grow(b []byte) {
	if len(s.line)+len(s.data)+len(b) > MaxEvent {
		s.err = fmt.Errorf("%w (%d bytes)", ErrEventTooLarge, MaxEvent)
		s.line, s.data = nil, nil
		return
	}
	s.line = append(s.line, b...)
}

// endLine applies one whole line.
func (s *Stream) endLine() {
	line := s.line
	s.line = s.line[:0]
	if s.err != nil {
		return
	}
	if len(line) == 0 {
		s.dispatch()
		return
	}
	name, value, _ := bytes.Cut(line, []byte(":"))
	if string(name) != "data" {
		return // event, id, retry, comments: no dialect needs them
	}
	value = bytes.TrimPrefix(value, []byte(" "))
	if s.hasData {
		s.data = append(s.data, '\n')
	}
	s.data = append(s.data, value...)
	s.hasData = true
}

func (s *Stream) dispatch() {
	if !s.hasData {
		return
	}
	data := s.data
	s.data, s.hasData = s.data[:0], false
	first, err := s.d.event(data)
	if err != nil {
		s.err = err
		return
	}
	if first && s.first.IsZero() {
		s.first = s.now()
	}
}

// FirstOutput is when the first event that carried output was read
// (zero: none yet).
func (s *Stream) FirstOutput() time.Time { return s.first }

// Turn is what the stream said, once it has ended. An event the stream
// ended in the middle of is read as if a blank line had ended it, as
// the SDKs do at end of stream.
func (s *Stream) Turn() (Turn, error) {
	if s.err == nil {
		if len(s.line) > 0 {
			s.endLine()
		}
		s.dispatch()
	}
	if s.d == nil {
		return Turn{Dialect: s.dialect}, s.err
	}
	return s.d.turn(), s.err
}
