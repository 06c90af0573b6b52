package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DefaultMaxEvent bounds one SSE event when NewSSEReader is given no limit:
// a message as large as Parse accepts, and room for its framing.
const DefaultMaxEvent = DefaultMaxMessage + 64<<10

// ErrEventTooLarge: an SSE event grew past the reader's limit before it
// ended. The reader does not buffer on: the stream cannot be read further.
var ErrEventTooLarge = errors.New("mcp: SSE event larger than the limit")

// Event is one event of a text/event-stream, read per the WHATWG
// event-stream interpretation rules.
type Event struct {
	Type string // the event field ("" means "message")
	Data string // the data lines, joined with "\n"
	// HasData: the event had at least one data line. Browsers and SDKs
	// dispatch only such events; the others (a priming event with just
	// an id, a keep-alive comment) only update state or keep the
	// connection busy, and are forwarded all the same.
	HasData bool
	ID      string // the last id field without a NUL in it
	HasID   bool   // an id field set ID; "id:" alone resets the last event id to ""
	Retry   int    // the last retry field of only ASCII digits, or -1
	// Comments are the comment lines (":" lines), the text after the colon
	// as sent, so a keep-alive can be forwarded.
	Comments []string
	// Raw is the event's exact bytes, final blank line included. An event
	// also carries the blank lines before it, and a byte-order mark at the
	// start of the stream; and when a CR that ends an event is the last
	// byte available, the reader returns the event at once and the LF that
	// may follow starts the next event's Raw. Concatenated, the Raws are
	// the stream, byte for byte. agentg never forwards Raw: every event
	// it forwards is framed anew (sse_canon.go).
	Raw []byte
}

// SSEReader reads events from a text/event-stream one at a time. Its
// buffer holds at most one event and a read beyond it: never more than the
// limit and 4 KiB, and no more than 64 KiB once a large event is past.
type SSEReader struct {
	r       io.Reader
	max     int
	buf     []byte // buf[off:] is read from r and not yet returned
	off     int
	err     error // from r, returned once the buffer is drained
	started bool  // the byte-order mark check is done
}

// NewSSEReader returns a reader of the events in r. maxEvent bounds the
// bytes of one event (Raw); 0 or less means DefaultMaxEvent.
func NewSSEReader(r io.Reader, maxEvent int) *SSEReader {
	if maxEvent <= 0 {
		maxEvent = DefaultMaxEvent
	}
	return &SSEReader{r: r, max: maxEvent}
}

// Next returns the next event. At the end of the stream it returns io.EOF,
// after a last Event with only Raw if blank lines ended the stream. A
// stream that ends inside an event returns an error wrapping
// io.ErrUnexpectedEOF: clients drop such an event, so must a proxy.
func (s *SSEReader) Next() (Event, error) {
	if s.err != nil && s.off == len(s.buf) {
		return Event{}, s.err
	}
	pos := s.off // start of the line being read
	if !s.started {
		for len(s.buf)-s.off < len(BOM) && bytes.HasPrefix(BOM, s.buf[s.off:]) && s.fill(&pos) {
		}
		if bytes.HasPrefix(s.buf[s.off:], BOM) {
			pos += len(BOM)
		}
		s.started = true
	}
	ev := Event{Retry: -1}
	var data []byte
	pending := false // a line other than a blank one has been read
	seen := 0        // bytes of the line at pos already searched for its end
	for {
		i := lineEnd(s.buf[pos+seen:])
		if i < 0 {
			seen = len(s.buf) - pos
			if s.fill(&pos) {
				continue
			}
			return s.end(pending, pos)
		}
		i += seen
		eol, next := pos+i, pos+i+1
		if s.buf[eol] == '\r' && next == len(s.buf) && s.err == nil && (i > 0 || !pending) {
			// Is it CRLF? Only the next byte says. (A CR ending the
			// blank line that ends an event is not waited on: the event
			// goes out now, not when the server next writes.)
			seen = i
			s.fill(&pos)
			continue
		}
		if s.buf[eol] == '\r' && next < len(s.buf) && s.buf[next] == '\n' {
			next++
		}
		if next-s.off > s.max {
			s.off, s.err = len(s.buf), ErrEventTooLarge
			return Event{}, ErrEventTooLarge
		}
		line := s.buf[pos:eol]
		pos, seen = next, 0
		if len(line) == 0 {
			if !pending {
				continue // a blank line with no event before it: carried in Raw
			}
			if ev.HasData {
				ev.Data = string(data)
			}
			ev.Raw = bytes.Clone(s.buf[s.off:pos])
			s.off = pos
			if s.off == len(s.buf) && cap(s.buf) > 64<<10 {
				s.buf, s.off = nil, 0 // a large event is over: give its buffer back
			}
			return ev, nil
		}
		pending = true
		data = applyField(&ev, line, data)
	}
}

// lineEnd is the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	lim := b
	if n >= 0 {
		lim = b[:n]
	}
	if r := bytes.IndexByte(lim, '\r'); r >= 0 {
		return r
	}
	return n
}

// applyField applies one non-blank line to ev, appending a data line to data.
func applyField(ev *Event, line, data []byte) []byte {
	if line[0] == ':' {
		ev.Comments = append(ev.Comments, string(line[1:]))
		return data
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		ev.Type = string(value)
	case "data":
		if ev.HasData {
			data = append(data, '\n')
		}
		data = append(data, value...)
		ev.HasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			ev.ID, ev.HasID = string(value), true
		}
	case "retry":
		if len(value) > 0 && strings.Trim(string(value), "0123456789") == "" {
			if n, err := strconv.Atoi(string(value)); err == nil {
				ev.Retry = n
			}
		}
	}
	return data
}

// end is Next at the end of the input, with no line end after pos.
func (s *SSEReader) end(pending bool, pos int) (Event, error) {
	err := s.err
	if err == io.EOF && (pending || pos < len(s.buf)) {
		err = fmt.Errorf("mcp: SSE stream ended inside an event: %w", io.ErrUnexpectedEOF)
	}
	if err != io.EOF || s.off == len(s.buf) {
		s.off, s.err = len(s.buf), err
		return Event{}, err
	}
	// Only blank lines (and perhaps the byte-order mark) are left: they
	// go back as an event of their own, so that every byte is accounted
	// for.
	ev := Event{Retry: -1, Raw: bytes.Clone(s.buf[s.off:])}
	s.off = len(s.buf)
	return ev, nil
}

// fill reads more of the stream, keeping buf[off:] and moving *pos with
// it. It reports false once the input has ended (s.err is then set).
func (s *SSEReader) fill(pos *int) bool {
	if s.err != nil {
		return false
	}
	if s.off > 0 {
		n := copy(s.buf, s.buf[s.off:])
		*pos -= s.off
		s.buf, s.off = s.buf[:n], 0
	}
	if len(s.buf) == cap(s.buf) {
		limit := s.max + 4096 // an event of max bytes, and its line end
		if cap(s.buf) >= limit {
			s.err = ErrEventTooLarge
			return false
		}
		s.buf = append(make([]byte, 0, min(2*cap(s.buf)+4096, limit)), s.buf...)
	}
	for range 100 {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	s.err = io.ErrNoProgress
	return false
}

// MessageEvent frames one JSON-RPC message as the SSE event MCP servers
// send it in: event type "message", the message as its data.
func MessageEvent(msg []byte) Event {
	return Event{Type: "message", Data: string(msg), HasData: true, Retry: -1}
}

// WriteEvent writes e in one Write call, framed canonically (appendEvent:
// LF line ends, fields in the order event, id, retry, data as the SDKs
// write them, comments first). Data is split at "\n" into data lines; an
// event with HasData and empty Data gets one empty data line. It refuses a
// field that cannot be framed (a CR or LF in the type, id or a comment, a
// NUL in the id, a CR in the data) rather than let the reader on the
// other side see different events.
func WriteEvent(w io.Writer, e Event) error {
	b, ok := AppendEvent(make([]byte, 0, len(e.Data)+len(e.Type)+len(e.ID)+32), e)
	if !ok {
		return ErrUnframable
	}
	_, err := w.Write(b)
	return err
}

var ErrUnframable = errors.New("mcp: SSE event with a line break in a field it cannot carry one in")
