package mcp

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// An answer to a governed server's POST under a content type that is
// neither application/json nor text/event-stream. MCP has no such answer,
// but HTTP does: an error status the client must see (401 with
// WWW-Authenticate to authorise, 404 when its session expired, which the
// specification has the client answer with a new initialize), a 202 or 204
// with no body. Those carry no message, and pass. So does the 2024-11-05
// transport's acknowledgement of a POST: the TypeScript SDK's
// SSEServerTransport answers every POST 202 with the text "Accepted" and no
// Content-Type, while the answer itself comes on the GET stream; a legacy
// client reads nothing from that body (both SDKs' clients check the status
// only), and agentg passes it when it is short text that no decoder could
// take for JSON-RPC (ackBody). Anything else could be read as a message by
// a lenient client (a JSON-RPC body under text/plain, a 200 with a body)
// without agentg having read it: it is withheld.

// ruleAnswerType names a withheld answer.
const ruleAnswerType = "builtin:mcp-answer-type"

// errAnswerType is a withheld answer.
func errAnswerType(status int, ct string) *wire.ParseError {
	return &wire.ParseError{Reason: "answer-type", Code: wire.CodeInternalError,
		Detail: fmt.Sprintf("the server answered %d with Content-Type %q, which is not MCP's (application/json or text/event-stream): the answer was withheld", status, ct)}
}

// passable reports whether a held answer carries nothing a client could
// take for a message. ack: the answer is to a 2024-11-05 POST, whose
// transport acknowledges with 202 and a short text.
func passable(status int, body []byte, h http.Header, ack bool) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	// A Content-Type two readers could read apart is read both ways: as
	// undecidable.
	ct, err := wire.ContentType(h)
	if err != nil {
		return false
	}
	if ack && status == http.StatusAccepted {
		return ackBody(body)
	}
	return (status < 200 || status > 299) && !wire.AnswerMayBeJSONRPC(body, ct.Charset)
}

// maxAck bounds a legacy POST's acknowledgement text.
const maxAck = 256

// ackBody reports a short acknowledgement text: valid UTF-8, no control
// characters but white space, and no JSON object or array at its start
// (jsonish: after any white space and byte-order marks), so that no
// decoder, however lenient, reads a message from it.
func ackBody(body []byte) bool {
	if len(body) > maxAck || !utf8.Valid(body) || wire.Jsonish(string(body)) {
		return false
	}
	for _, r := range string(body) {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// hold buffers a held answer. Past max_message it is judged on what is
// held: an error page passes (held bytes, then the rest as it comes),
// anything else is withheld and the forwarder told to stop.
func (rw *respWriter) hold(p []byte) (int, error) {
	if rw.failed != nil {
		return 0, rw.failed
	}
	if rw.json.Len()+len(p) <= rw.max {
		return rw.json.Write(p)
	}
	if rw.opened || !passable(rw.status, append(bytes.Clone(rw.json.Bytes()), p...), rw.w.Header(), rw.ack) {
		rw.failed = errAnswerType(rw.status, rw.w.Header().Get("Content-Type"))
		return 0, rw.failed
	}
	rw.mode = modePass
	rw.w.WriteHeader(rw.status)
	rw.written = true
	if _, err := rw.w.Write(rw.json.Bytes()); err != nil {
		return 0, err
	}
	rw.json.Reset()
	return rw.w.Write(p)
}

// refuseNow withholds an answer at its header (a GET stream's under
// another content type: the Go SDK's 2024-11-05 client reads any 2xx body
// of its GET as events): the client gets 502 and the withheld error now,
// and the forwarder's writes fail.
func (rw *respWriter) refuseNow(err error) {
	rw.failed = err
	out := rw.withhold(err)
	h := rw.w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Range", "Etag", "Last-Modified"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	rw.w.WriteHeader(http.StatusBadGateway)
	rw.w.Write(out)
	http.NewResponseController(rw.w).Flush()
	rw.written = true
}

// finishHold judges a held answer once the server is done.
func (rw *respWriter) finishHold() error {
	if rw.written {
		return rw.failed // refused at its header (refuseNow)
	}
	if rw.opened {
		// On agentg's own event stream nothing but a message can
		// answer the calls waiting: whatever this is, they get errors.
		err := rw.failed
		if err == nil {
			err = errAnswerType(rw.status, rw.Header().Get("Content-Type"))
		}
		if rw.withhold != nil {
			rw.injectEvent(wire.MessageEvent(rw.withhold(err)))
		} else {
			rw.writeError("agentg: " + err.Error())
		}
		return err
	}
	h := rw.w.Header()
	body := rw.json.Bytes()
	if rw.failed == nil && passable(rw.status, body, h, rw.ack) {
		if len(bytes.TrimSpace(body)) == 0 && len(rw.extra) > 0 {
			// Nothing from the server, but agentg's own answers to the
			// elements it refused are due.
			out := mergeBatch(nil, rw.extra)
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", strconv.Itoa(len(out)))
			rw.w.WriteHeader(http.StatusOK)
			rw.w.Write(out)
			return nil
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		rw.w.WriteHeader(rw.status)
		rw.w.Write(body)
		return nil
	}
	err := rw.failed
	if err == nil {
		err = errAnswerType(rw.status, h.Get("Content-Type"))
	}
	out := rw.withhold(err)
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Range", "Etag", "Last-Modified"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set("Connection", "close") // the client must not reuse what is dropped
	rw.w.WriteHeader(http.StatusBadGateway)
	rw.w.Write(out)
	// The forwarder may be ending the handler with a panic (the write it
	// was refused): what is flushed now reaches the client before the
	// connection is dropped.
	http.NewResponseController(rw.w).Flush()
	return err
}
