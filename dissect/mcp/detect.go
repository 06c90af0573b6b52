package mcp

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// Detecting a 2024-11-05 HTTP+SSE session on a host no mcp.servers entry
// names. Its client opens it with a GET for text/event-stream, and nothing
// in that request says MCP; the stream's first event does: the legacy
// transport's first event is "endpoint", naming where the client POSTs.
// So the guard peeks at the first event of such a stream, and only at it,
// bounded: up to sniffMax bytes (comment-only blocks before it included).
// An "endpoint" makes it an MCP session, decided by mcp.unknown_servers
// and then dissected like a named server's; anything else (another event,
// a first event past the bound, a stream that ends first) passes event
// by event, re-framed like every stream (sse_canon.go), until an event
// named endpoint comes after all: clients take one wherever it comes, so
// the stream is judged then, and dissected from there on or ended. The
// header waits for the first event at most sniffWait, so a quiet non-MCP
// stream still opens at once; a deny that comes after it was sent can
// only end the stream.

const (
	sniffMax  = 4 << 10
	sniffWait = 500 * time.Millisecond
)

type sniffVerdict uint8

const (
	sniffPass    sniffVerdict = iota // not MCP: forward as it is
	sniffDissect                     // MCP, allowed: dissect
	sniffRefuse                      // MCP, refused: answer with the body given
)

// recordReader keeps a copy of what it reads.
type recordReader struct {
	r   io.Reader
	buf []byte
}

func (r *recordReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// pumpSniff judges the stream on its first event, then forwards it as the
// verdict says.
func (rw *respWriter) pumpSniff(pr *io.PipeReader) {
	rec := &recordReader{r: pr}
	sr := wire.NewSSEReader(rec, sniffMax)
	timer := time.AfterFunc(sniffWait, rw.releaseHeader)
	var ev wire.Event
	var err error
	for {
		ev, err = sr.Next()
		if err != nil || ev.HasData || ev.Type != "" || len(rec.buf) > sniffMax {
			break
		}
	}
	timer.Stop()
	endpoint := err == nil && wire.EventName(ev.Type) == "endpoint" // named as the Go SDK reads it
	if rw.sniffRaw && !endpoint {
		// Passed as it came if not MCP, so read as leniently as any
		// client could: the Go SDK's ends lines at LF only and trims
		// names ("event:\rendpoint" is its endpoint event).
		endpoint = bytes.Contains(rec.buf, []byte("endpoint"))
	}
	verdict, refusal := rw.sniff(endpoint)
	// Everything read so far, then the rest: the stream as it came.
	replay := io.MultiReader(bytes.NewReader(rec.buf), pr)
	switch verdict {
	case sniffDissect:
		if rw.sniffRaw {
			rw.w.Header().Set("Content-Type", "text/event-stream") // re-framed from here on
		}
		rw.releaseHeader()
		rw.pumpSSE(pr, replay)
	case sniffRefuse:
		rw.mu.Lock()
		if !rw.written {
			h := rw.w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", strconv.Itoa(len(refusal)))
			h.Del("Content-Encoding")
			rw.w.WriteHeader(http.StatusForbidden)
			rw.w.Write(refusal)
			// Flushed now: the forwarder's next write fails, and the
			// connection may be dropped right after.
			http.NewResponseController(rw.w).Flush()
			rw.written = true
		}
		rw.mu.Unlock()
		pr.CloseWithError(errStreamRefused)
		close(rw.done)
	case sniffPass:
		if !rw.sniffRaw {
			// Not MCP, so far: re-framed all the same (no client may
			// read an event agentg did not), and judged again should
			// an endpoint event come later (pumpEvents).
			rw.releaseHeader()
			rw.pumpEvents(pr, wire.NewSSEReader(replay, rw.max), false)
			return
		}
		// Not an event stream by its type, and not MCP: as it came,
		// until "endpoint" shows (past the bytes peeked at, after
		// comments, say): a client reading it as events could start a
		// session there, so it ends.
		rw.releaseHeader()
		defer close(rw.done)
		defer pr.Close()
		buf := make([]byte, 32<<10)
		var tail []byte // the end of the previous read, for a word cut in two
		for {
			n, err := replay.Read(buf)
			if n > 0 {
				if bytes.Contains(append(tail, buf[:n]...), []byte("endpoint")) {
					if rw.onLate != nil {
						rw.onLate()
					}
					rw.failed = errLateEndpoint
					pr.CloseWithError(errLateEndpoint)
					return
				}
				tail = append(tail[:0], buf[max(0, n-len("endpoint")):n]...)
				rw.send(func(w io.Writer) { w.Write(buf[:n]) })
			}
			if err != nil {
				return
			}
		}
	}
}

var errLateEndpoint = &wire.ParseError{Reason: "late-endpoint", Code: wire.CodeInternalError,
	Detail: "a stream passed as it came (not an event stream by its type) named an endpoint: ended"}

var errStreamRefused = &wire.ParseError{Reason: "unknown-server", Code: wire.CodeDenied, Detail: "MCP stream refused by mcp.unknown_servers"}

// releaseHeader sends the server's status and header, once.
func (rw *respWriter) releaseHeader() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.written {
		return
	}
	rw.w.WriteHeader(rw.status)
	http.NewResponseController(rw.w).Flush()
	rw.written = true
}
