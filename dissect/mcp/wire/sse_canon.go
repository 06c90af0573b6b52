package wire

import (
	"strconv"
	"strings"
	"unicode"
)

// Canonical re-framing. Clients do not read an event stream alike: the
// WHATWG algorithm (browsers, the TypeScript SDK's eventsource-parser)
// strips one space after the colon, ends lines at CR, LF or CRLF and skips
// a leading byte-order mark; the Go SDK v1.8.0 client ends lines at LF
// only, trims all white space around every value (so "event: message "
// and "event:\tmessage" are messages to it), sees no byte-order mark (so
// "\uFEFFevent: x" is an unknown field and the event is a message), and
// its 2024-11-05 client reads every event after the first as a message,
// whatever its name. An event agentg forwards as it came could therefore
// be a message to some client and not to agentg.
//
// So agentg forwards no server byte of an event stream as it came: every
// event is read with SSEReader and written anew by appendEvent, LF line
// ends, only the event, id, retry and data fields, comments as ":" lines,
// no byte-order mark. What a client reads from that is what agentg read,
// whichever of the readers above it uses. And what agentg reads as a
// message is what any of them could:
//   - the event's name is taken as the Go SDK takes it, white space
//     trimmed (eventName), and written so;
//   - an event named "" or "message" with data that is not blank is a
//     message: dissected, rewritten, forwarded;
//   - an event with another name whose data could decode as JSON-RPC (it
//     starts with "{" or "[" once white space and byte-order marks are
//     skipped) is a message to the 2024-11-05 Go client and to no other:
//     it is refused, dropped and logged, never passed undissected;
//   - everything else (the endpoint event, priming events with only an
//     id, keep-alive comments, named events with other data) carries no
//     message and is forwarded, re-framed.

// eventClass is what agentg does with one event of a server's stream.
type EventClass uint8

const (
	EventOther   EventClass = iota // no message in it: re-framed and forwarded
	EventMessage                   // a JSON-RPC message (or batch): dissected
	EventRefused                   // JSON-RPC under another name: dropped
)

// eventName is the event's name as every client will read it once
// re-framed: the field's value with white space trimmed, as the Go SDK
// reads it (the WHATWG readers then read the same, since nothing is left
// to trim).
func EventName(t string) string { return strings.TrimSpace(t) }

// classify says what ev is; ev.Type must already be eventName's.
func Classify(ev *Event) EventClass {
	if !ev.HasData || strings.TrimSpace(ev.Data) == "" {
		// Nothing a client could decode: the SDKs skip an event with
		// no data, and blank data decodes as no JSON at all.
		return EventOther
	}
	if ev.Type == "" || ev.Type == "message" {
		return EventMessage
	}
	if Jsonish(ev.Data) {
		return EventRefused
	}
	return EventOther
}

// jsonish reports data that a lenient decoder could take for a JSON-RPC
// message or batch: an object or an array, after any white space (Unicode
// included, as bytes.TrimSpace trims) and byte-order marks.
func Jsonish(data string) bool {
	t := strings.TrimLeftFunc(data, func(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' })
	return t != "" && (t[0] == '{' || t[0] == '[')
}

// Empty reports an event with nothing to write: blank lines, or fields
// no reader acts on (unknown names, a retry that is not a number).
func (e *Event) Empty() bool {
	return e.Type == "" && !e.HasID && e.Retry < 0 && !e.HasData && e.Data == "" && len(e.Comments) == 0
}

// appendEvent appends e framed canonically: comments first (each ":" and
// its text), then event, id, retry and data (split at "\n" into data
// lines; HasData with empty Data is one empty data line), LF line ends,
// a blank line. It reports false, appending nothing, for a field that
// cannot be framed: a CR or LF in the name, id or a comment, a NUL in the
// id, a CR in the data.
func AppendEvent(b []byte, e Event) ([]byte, bool) {
	if strings.ContainsAny(e.Type, "\r\n") || strings.ContainsAny(e.ID, "\r\n\x00") || strings.ContainsRune(e.Data, '\r') {
		return b, false
	}
	for _, c := range e.Comments {
		if strings.ContainsAny(c, "\r\n") {
			return b, false
		}
	}
	for _, c := range e.Comments {
		b = append(append(append(b, ':'), c...), '\n')
	}
	if e.Type != "" {
		b = append(append(append(b, "event: "...), e.Type...), '\n')
	}
	if e.HasID {
		b = append(append(append(b, "id: "...), e.ID...), '\n')
	}
	if e.Retry >= 0 {
		b = append(strconv.AppendInt(append(b, "retry: "...), int64(e.Retry), 10), '\n')
	}
	if e.HasData || e.Data != "" {
		data := e.Data
		for {
			line, rest, more := strings.Cut(data, "\n")
			b = append(append(append(b, "data: "...), line...), '\n')
			if !more {
				break
			}
			data = rest
		}
	}
	return append(b, '\n'), true
}
