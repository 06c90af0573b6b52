package mcp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// The response side of a governed exchange. What the server sends back is
// rewritten before the client sees it, in the framing it came in:
//   - application/json: read whole (bounded by max_message: one message
//     or one batch), each message rewritten, written with a fresh
//     Content-Length;
//   - text/event-stream: event by event, as the events arrive (never the
//     whole stream), every event re-framed canonically (sse_canon.go): a
//     message event is rewritten, JSON-RPC under another event name is
//     refused, anything else (comments, ids, retry, priming events, the
//     legacy endpoint) is forwarded as it was read;
//   - anything else, on a governed server's POST (strict), is held,
//     bounded by max_message, and passes only when it carries nothing a
//     client could take for a message: an empty body, or a status that is
//     not 2xx with a body that is not JSON-RPC (401 and 403 for
//     authorization, 404 for an expired session, which the client must
//     see to start a new one). Anything else is withheld, and the client
//     gets JSON-RPC errors for its requests in its place (withhold);
//   - anything else, on a governed server's GET (stream) with a 2xx
//     status, is refused at its header (refuseNow): clients read such a
//     body as an event stream all the same;
//   - elsewhere anything else passes untouched.
// Messages agentg answers itself (errors for denied elements of a batch)
// are merged in: into the JSON array, or as events ahead of the server's.

// rewriteFunc rewrites one JSON-RPC message (or batch) from the server.
// It returns the bytes to send in its place; nil drops it.
type rewriteFunc func(data []byte) ([]byte, error)

type respWriter struct {
	client    context.Context // the client's request: done once it has gone
	w         http.ResponseWriter
	rewrite   rewriteFunc
	extra     [][]byte               // agentg's own messages to add
	onEvent   func(*wire.Event) bool // sees (and may rewrite) every event of a stream that is not a message, its name trimmed; false drops it (the legacy endpoint)
	onRefused func(wire.Event)       // an event refused (JSON-RPC under a name other than message): logs it
	onHeader  func(http.Header)      // sees the server's header before anything is written
	onSent    func(delivered bool)   // after each write to the client: the events of what it carried can be logged, and its requests ended if it got there
	max       int
	// strict: the answer must be MCP's, and withhold gives the JSON-RPC
	// errors that stand in for one that is not (see above).
	strict   bool
	withhold func(err error) []byte
	// ack: the answer is to a 2024-11-05 POST, whose 202 may carry a
	// short acknowledgement text (withhold.go).
	ack bool
	// stream: the answer is to a GET, an event stream to the clients
	// whatever its header says (withhold.go).
	stream bool
	// sniffRaw: a sniffed answer whose type is not an event stream's:
	// it passes as it came unless it is MCP (detect.go).
	sniffRaw bool
	// onLate logs a sniffRaw stream ended when it named an endpoint
	// after all.
	onLate func()
	// sniff: an event stream that may not be MCP at all (a GET on a host
	// no servers entry names) is judged on its first event (detect.go).
	sniff func(endpoint bool) (sniffVerdict, []byte)
	// charset: a sniffed stream's charset, judged once it is known to
	// be MCP.
	charset string

	// opened: agentg has already answered the client with an event
	// stream of its own (while a call was held for approval, holdcall.go):
	// the server's header is read from detached, never written, and
	// whatever the server answers reaches the client as events on it.
	opened bool
	// detached: once a sniffed stream's header is handed to the pump
	// (which writes it when it has judged the stream), the forwarder's
	// later Header calls (for trailers) get this copy, not the header
	// being written.
	detached http.Header
	status   int
	mode     uint8
	json     bytes.Buffer
	pw       *io.PipeWriter
	done     chan struct{}
	failed   error
	mu       sync.Mutex // guards writes to w between the SSE goroutine and finish
	written  bool
	lost     bool // a write to the client failed; guarded by mu
}

const (
	modeNone uint8 = iota
	modePass
	modeJSON
	modeSSE
	modeHold // strict, and neither JSON nor SSE: held until judged
)

func newRespWriter(client context.Context, w http.ResponseWriter, rewrite rewriteFunc, extra [][]byte, max int) *respWriter {
	return &respWriter{client: client, w: w, rewrite: rewrite, extra: extra, max: max}
}

func (rw *respWriter) Header() http.Header {
	if rw.detached != nil {
		return rw.detached
	}
	return rw.w.Header()
}

func (rw *respWriter) WriteHeader(code int) {
	if rw.mode != modeNone {
		return
	}
	rw.status = code
	h := rw.Header()
	if rw.onHeader != nil {
		rw.onHeader(h)
	}
	ct, ctErr := wire.ContentType(h)
	mt := ct.Type
	switch {
	case h.Get("Content-Encoding") != "" && h.Get("Content-Encoding") != "identity":
		// Accept-Encoding was stripped; a server that compresses anyway
		// cannot be read, so its answer does not pass.
		rw.mode = modePass
		rw.failed = errEncodedResponse
		return
	case (mt == wire.ContentTypeJSON || mt == wire.ContentTypeSSE) && !ct.UTF8() && rw.sniff == nil:
		// A client that honours the charset (a Python client reading
		// text) would read other messages than agentg did.
		rw.refuseAnswer(errAnswerCharset(ct.Charset))
		return
	case ctErr != nil && rw.sniff == nil && (mediaTypeClaims(h, wire.ContentTypeJSON) || mediaTypeClaims(h, wire.ContentTypeSSE)):
		// Another header agentg cannot read is held below (strict) and
		// judged by passable, which passes no body under it.
		rw.refuseAnswer(errAnswerType(code, strings.Join(h.Values("Content-Type"), ", ")))
		return
	case mt == wire.ContentTypeSSE || rw.sniff != nil && success(code) && mt != wire.ContentTypeJSON:
		// A GET that may be a 2024-11-05 session is sniffed whatever
		// its type says: the Go SDK's client reads any 2xx body of its
		// GET as events, the TypeScript one any type that starts with
		// text/event-stream. One that is not an event stream by type
		// passes as it came unless it turns out MCP (detect.go).
		rw.sniffRaw = mt != wire.ContentTypeSSE && !hasPrefixFold(strings.TrimSpace(h.Get("Content-Type")), wire.ContentTypeSSE)
		if rw.sniff == nil {
			h.Set("Content-Type", wire.ContentTypeSSE) // what agentg re-frames
		} else {
			rw.charset = ct.Charset
		}
		rw.mode = modeSSE
		h.Del("Content-Length")
		pr, pw := io.Pipe()
		rw.pw, rw.done = pw, make(chan struct{})
		if rw.sniff != nil {
			rw.detached = h.Clone()
			go rw.pumpSniff(pr) // writes the header itself
			return
		}
		if !rw.opened {
			rw.w.WriteHeader(code)
		}
		rw.written = true
		go rw.pumpSSE(pr, pr)
	case mt == wire.ContentTypeJSON || code == http.StatusAccepted && len(rw.extra) > 0:
		rw.mode = modeJSON
		if mt == wire.ContentTypeJSON {
			h.Set("Content-Type", wire.ContentTypeJSON) // what agentg read and rewrote
		}
	case rw.stream && rw.strict && rw.withhold != nil && success(code):
		// A stream is judged at its header: one held until it ends
		// would keep the client waiting as long as it lasts.
		rw.mode = modeHold
		rw.refuseNow(errAnswerType(code, h.Get("Content-Type")))
	case rw.strict && rw.withhold != nil, rw.opened:
		rw.mode = modeHold
	default:
		rw.mode = modePass
		rw.w.WriteHeader(code)
		rw.written = true
	}
}

// refuseAnswer withholds an answer agentg cannot read as MCP's: on a
// governed POST (strict) the requests waiting get JSON-RPC errors and the
// refusal its event (finishHold); elsewhere the client gets one error.
func (rw *respWriter) refuseAnswer(err error) {
	rw.mode = modePass
	if rw.strict && rw.withhold != nil || rw.opened {
		rw.mode = modeHold
	}
	rw.failed = err
}

// errAnswerCharset is an answer in MCP's media type under another charset
// than UTF-8.
func errAnswerCharset(cs string) *wire.ParseError {
	return &wire.ParseError{Reason: "answer-charset", Code: wire.CodeInternalError,
		Detail: "the server answered in charset " + strconv.Quote(cs) + ": MCP messages are UTF-8, the answer was withheld"}
}

// mediaTypeClaims reports a Content-Type header that mentions mt in any
// spelling: one agentg cannot read but a client might take for mt.
func mediaTypeClaims(h http.Header, mt string) bool {
	for _, v := range h.Values("Content-Type") {
		if strings.Contains(strings.ToLower(v), mt) {
			return true
		}
	}
	return false
}

// success reports a 2xx answer that may carry a body: 204 and 205 carry
// none (net/http writes none), so they are neither streams nor messages.
func success(code int) bool {
	return code >= 200 && code <= 299 && code != http.StatusNoContent && code != http.StatusResetContent
}

var errEncodedResponse = &wire.ParseError{Reason: "encoded-response", Code: wire.CodeInternalError,
	Detail: "the server answered with a Content-Encoding agentg cannot read"}

func (rw *respWriter) Write(p []byte) (int, error) {
	if rw.mode == modeNone {
		rw.WriteHeader(http.StatusOK)
	}
	switch rw.mode {
	case modeJSON:
		if rw.json.Len()+len(p) > rw.max {
			rw.failed = errResponseTooLarge
			return 0, errResponseTooLarge
		}
		return rw.json.Write(p)
	case modeSSE:
		return rw.pw.Write(p)
	case modeHold:
		return rw.hold(p)
	}
	if rw.failed != nil {
		return 0, rw.failed
	}
	return rw.w.Write(p)
}

var errResponseTooLarge = &wire.ParseError{Reason: wire.ReasonTooLarge, Code: wire.CodeInternalError, Detail: "the server's answer is larger than max_message"}

// Flush is the forwarder's: an event stream is flushed event by event by
// pumpSSE, a JSON body once whole; a passed-through body as asked.
func (rw *respWriter) Flush() {
	if rw.mode == modePass && rw.failed == nil {
		http.NewResponseController(rw.w).Flush()
	}
}

func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.w }

var _ http.Flusher = (*respWriter)(nil)

// pumpSSE reads the server's events and writes each to the client as soon
// as it is read, re-framed (sse_canon.go): a message rewritten, JSON-RPC
// under another name refused, anything else as it was read. No byte of
// the server's reaches the client as it came.
func (rw *respWriter) pumpSSE(pr *io.PipeReader, src io.Reader) {
	rw.pumpEvents(pr, wire.NewSSEReader(src, rw.max), true)
}

// pumpEvents is pumpSSE. With mcp false (a stream the sniffer judged not
// MCP, detect.go) its events are only re-framed, none dissected, until
// one is named endpoint: clients take an endpoint event wherever it comes
// (the TypeScript SDK's listens for it on the whole stream), so the
// stream is judged again as the 2024-11-05 session it has become, and
// either dissected from there on or ended.
func (rw *respWriter) pumpEvents(pr *io.PipeReader, sr *wire.SSEReader, mcp bool) {
	defer close(rw.done)
	defer pr.Close()
	for _, m := range rw.extra {
		rw.injectEvent(wire.MessageEvent(m))
	}
	var buf []byte // one event's framing, reused
	for {
		ev, err := sr.Next()
		if err != nil {
			if err != io.EOF {
				rw.failed = err
				pr.CloseWithError(err)
			}
			return
		}
		ev.Type = wire.EventName(ev.Type)
		if !mcp && ev.Type == "endpoint" {
			if verdict, _ := rw.sniff(true); verdict != sniffDissect {
				rw.failed = errStreamRefused
				pr.CloseWithError(errStreamRefused)
				return
			}
			mcp = true
		}
		class := wire.EventOther
		if mcp {
			class = wire.Classify(&ev)
		}
		switch class {
		case wire.EventRefused:
			if rw.onRefused != nil {
				rw.onRefused(ev)
			}
			continue
		case wire.EventMessage:
			in := []byte(ev.Data)
			out, err := rw.rewrite(in)
			if err != nil {
				rw.failed = err
				pr.CloseWithError(err)
				return
			}
			if out == nil {
				continue
			}
			if len(out) != len(in) || &out[0] != &in[0] {
				ev.Data = string(out) // rewritten (unchanged, rewrite gives in back)
			}
		default:
			if mcp && rw.onEvent != nil && !rw.onEvent(&ev) {
				continue // an event agentg does not forward (a second endpoint)
			}
		}
		if ev.Empty() {
			continue // blank lines, unknown fields: nothing to say
		}
		var ok bool
		if buf, ok = wire.AppendEvent(buf[:0], ev); !ok {
			// SSEReader splits lines at CR and LF, and a rewritten
			// message is JSON that came without a CR: not reached.
			rw.failed = wire.ErrUnframable
			pr.CloseWithError(wire.ErrUnframable)
			return
		}
		rw.send(func(w io.Writer) { w.Write(buf) })
	}
}

// send writes to the client and flushes, as one step: the stream's own
// events and the ones agentg injects (from another request's goroutine)
// never interleave, and the ResponseWriter is never used by two at once.
func (rw *respWriter) send(write func(io.Writer)) {
	rw.mu.Lock()
	write(rw.w)
	if http.NewResponseController(rw.w).Flush() != nil {
		rw.lost = true
	}
	rw.mu.Unlock()
	rw.sent()
}

// sent tells onSent what was written so far, and whether it reached the
// client: no write failed and the client had not gone by then (net/http
// notices a client that hangs up before a write to it fails).
func (rw *respWriter) sent() {
	if rw.onSent == nil {
		return
	}
	rw.mu.Lock()
	delivered := !rw.lost && rw.client.Err() == nil
	rw.mu.Unlock()
	rw.onSent(delivered)
}

// injectEvent sends an event on a stream in progress.
func (rw *respWriter) injectEvent(ev wire.Event) {
	rw.send(func(w io.Writer) { wire.WriteEvent(w, ev) })
}

// finish ends the response once the forwarder has returned: a JSON body is
// rewritten and written, an event stream drained. It reports what went
// wrong, if anything, for the event.
func (rw *respWriter) finish() error {
	defer rw.sent()
	switch rw.mode {
	case modeNone:
		if rw.opened {
			return rw.finishHold() // the server said nothing: the calls waiting get errors
		}
		if len(rw.extra) == 0 {
			return rw.failed
		}
		rw.mode, rw.status = modeJSON, http.StatusOK
		fallthrough
	case modeJSON:
		return rw.finishJSON()
	case modeSSE:
		rw.pw.Close()
		<-rw.done
	case modeHold:
		return rw.finishHold()
	case modePass:
		if rw.failed != nil && (!rw.written || rw.opened) {
			// An answer agentg could not read (a Content-Encoding the
			// client asked for nowhere) is refused, and said so.
			rw.writeError("agentg: " + rw.failed.Error())
		}
	}
	return rw.failed
}

// writeError answers with a JSON-RPC error (id null) when the server's
// answer cannot be passed on: a 502 JSON body, or on a stream agentg
// opened, an event.
func (rw *respWriter) writeError(msg string) {
	if rw.opened {
		rw.injectEvent(wire.MessageEvent(wire.ErrorResponse(nil, wire.CodeInternalError, msg, nil)))
		return
	}
	// The forwarder may be ending the handler with a panic (the write
	// it was refused): flushed now, the error reaches the client before
	// the connection is dropped, and the client is told not to reuse it.
	rw.w.Header().Set("Connection", "close")
	writeJSONError(rw.w, http.StatusBadGateway, nil, wire.CodeInternalError, msg, nil)
	http.NewResponseController(rw.w).Flush()
}

func (rw *respWriter) finishJSON() error {
	h := rw.w.Header()
	if rw.failed != nil {
		rw.writeError("agentg: " + rw.failed.Error())
		return rw.failed
	}
	var out []byte
	if body := bytes.TrimSpace(rw.json.Bytes()); len(body) > 0 {
		var err error
		if out, err = rw.rewrite(body); err != nil {
			rw.writeError("agentg: the server's answer: " + err.Error())
			return err
		}
	}
	if rw.opened {
		// The client has agentg's event stream: each message an event.
		if len(out) > 0 {
			rw.injectEvent(wire.MessageEvent(out))
		}
		for _, m := range rw.extra {
			rw.injectEvent(wire.MessageEvent(m))
		}
		return nil
	}
	status := rw.status
	if len(rw.extra) > 0 {
		out = mergeBatch(out, rw.extra)
		if status == http.StatusAccepted || status == 0 {
			status = http.StatusOK
		}
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	rw.w.WriteHeader(status)
	rw.w.Write(out)
	return nil
}

// mergeBatch adds agentg's own messages to the server's answer: a JSON
// array with every message, whatever the server sent (one message, an
// array, or nothing).
func mergeBatch(server []byte, extra [][]byte) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	add := func(m []byte) {
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(m)
		n++
	}
	s := bytes.TrimSpace(server)
	switch {
	case len(s) > 1 && s[0] == '[':
		if inner := bytes.TrimSpace(s[1 : len(s)-1]); len(inner) > 0 {
			add(inner)
		}
	case len(s) > 0:
		add(s)
	}
	for _, m := range extra {
		add(m)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// hasPrefixFold reports whether s starts with prefix, ASCII case folded.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
