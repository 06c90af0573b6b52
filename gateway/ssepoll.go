package gateway

import (
	"bytes"
	"io"
	"strconv"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// SSE polling (2025-11-25, SEP-1699): a server may end a call's POST
// stream before the answer, with a retry field, for the client to poll:
// reconnect after the retry delay and, if the stream's events had ids,
// resume it with Last-Event-ID. The gateway's SDK client does that
// upstream by itself. What the client must see is what the server did:
//   - a stream with event ids is resumable, and the gateway's SDK client
//     resumes it and receives the answer; the client's own stream stays
//     open until the answer comes on it (the gateway's streams carry no
//     ids of their own, so closing it would lose the answer);
//   - a stream without ids ends the call's stream for good: no one can
//     resume it, the server's answer will come on no stream of this call.
//     The client's stream is closed in the same way, with the server's
//     retry, so the client polls as it would direct (the conformance
//     suite's server-sse-polling scenario against the Go SDK's
//     everything-server, which keeps no event store).

// sseRevision is the revision whose clients poll a closed stream.
const sseRevision = "2025-11-25"

// closeWatch reads an upstream's SSE answer to a POST and, when it ends
// cleanly, without an event id, with a retry field after its last
// message, closes the client's stream of the call with that retry. It
// reads only line heads: no message is parsed twice.
type closeWatch struct {
	io.ReadCloser
	close func(sdk.CloseSSEStreamArgs)
	head  []byte // the current line's first bytes
	full  bool   // head holds all it keeps of the current line
	retry int64  // ms of the last retry field with no message after it; -1: none
	ids   bool   // an event had an id: the stream is resumable
	fired bool
}

// headMax is how much of a line closeWatch keeps: a field name and a
// retry value.
const headMax = 32

func newCloseWatch(body io.ReadCloser, close func(sdk.CloseSSEStreamArgs)) *closeWatch {
	return &closeWatch{ReadCloser: body, close: close, head: make([]byte, 0, headMax), retry: -1}
}

func (w *closeWatch) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			w.line()
			w.head, w.full = w.head[:0], false
			continue
		}
		if len(w.head) < headMax {
			w.head = append(w.head, b)
		} else {
			w.full = true
		}
	}
	if err == io.EOF && w.retry >= 0 && !w.ids && !w.fired {
		w.fired = true
		w.close(sdk.CloseSSEStreamArgs{RetryAfter: time.Duration(w.retry) * time.Millisecond})
	}
	return n, err
}

// line reads one line's head: a retry field arms the close, a data
// field (a message after it) disarms it.
func (w *closeWatch) line() {
	h := w.head
	if len(h) > 0 && h[len(h)-1] == '\r' {
		h = h[:len(h)-1]
	}
	switch {
	case len(h) >= 5 && string(h[:5]) == "data:":
		if len(bytes.TrimSpace(h[5:])) > 0 || w.full {
			w.retry = -1 // a message after the retry
		}
	case len(h) >= 3 && string(h[:3]) == "id:":
		if len(bytes.TrimSpace(h[3:])) > 0 {
			w.ids = true
		}
	case len(h) >= 6 && string(h[:6]) == "retry:" && !w.full:
		v := h[6:]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		if ms, err := strconv.ParseInt(string(v), 10, 64); err == nil && ms >= 0 {
			w.retry = ms
		}
	}
}
