package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Request bodies on the HTTP/1 doors. agentg answers many requests without
// reading their bodies (every refusal, the MCP guard's, a forwarder error),
// and forwards others while the answer streams back (full duplex). Left to
// net/http, an unread body is a hazard either way:
//   - without full duplex, net/http reads up to 256 KiB of it before the
//     answer's head is written, so a client that sends its body slowly
//     holds the refusal back as long as it likes;
//   - with full duplex, a handler that returns with the body unread trips
//     a net/http bug (the body's rest is read after the connection's
//     background read started: "invalid concurrent Body.Read call", a
//     recovered panic and a dropped connection).
// So every exchange with a body runs full duplex from its first line, and
// ends in one place (bodyGuard.end): the answer is flushed first, then
// what is left of the body is drained, within drainMax bytes and
// Config.DrainTimeout; a body that is larger, slower or broken is not
// waited for: the connection is closed after the answer, never read as a
// next request. While a body is read (forwarded, or read by the MCP
// guard), each read must make progress within Config.BodyIdleTimeout, so
// a stalled upload cannot hold a connection forever, and a long one that
// keeps sending is never cut; this one bound applies to HTTP/2 streams
// too.

// drainMax is how much of an unread body is read to keep its connection:
// net/http's own bound (maxPostHandlerReadBytes).
const drainMax = 256 << 10

// bodyGuard is the request body of one exchange. The forwarder's
// transport may read and close it from its own goroutine, so its state is
// atomic, and once the exchange has ended it no longer touches the
// connection (the next request's deadlines are net/http's).
type bodyGuard struct {
	io.ReadCloser
	w      http.ResponseWriter
	rc     *http.ResponseController
	length int64         // declared length; -1 unknown (chunked)
	idle   time.Duration // per-read progress bound; 0: none
	drain  time.Duration
	n      atomic.Int64 // bytes read
	// deadlineSet is when the progress deadline was last moved (Unix ns).
	deadlineSet atomic.Int64
	eof         atomic.Bool // the body was read to its end
	closed      atomic.Bool // Close was called (net/http's body then drained what it could)
	ended       atomic.Bool // end ran: the connection is no longer ours
	h2          bool        // an HTTP/2 stream: only the progress timeout applies
}

// guardBody makes r's body one whose exchange ends cleanly (see above),
// and turns on full duplex for it; nil when r has no body. An HTTP/2
// stream is full duplex already and is reset when its body is left: only
// the progress timeout applies to it (per stream).
func (s *Server) guardBody(w http.ResponseWriter, r *http.Request) *bodyGuard {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rc := http.NewResponseController(w)
	b := &bodyGuard{ReadCloser: r.Body, w: w, rc: rc, length: r.ContentLength,
		idle: s.cfg.BodyIdleTimeout, drain: s.cfg.DrainTimeout, h2: r.ProtoMajor != 1}
	if !b.h2 && rc.EnableFullDuplex() != nil {
		return nil // not net/http's HTTP/1 server: nothing of the above applies
	}
	r.Body = b
	return b
}

// Read reads the body, each read bounded by the progress timeout.
func (b *bodyGuard) Read(p []byte) (int, error) {
	if b.ended.Load() || b.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.idle > 0 {
		// Moved on at most every idle/8 (on HTTP/2 each move is a message
		// to the connection's loop): a stall is cut after 7/8 to all of
		// the timeout.
		if now := time.Now(); now.UnixNano()-b.deadlineSet.Load() > int64(b.idle/8) {
			b.deadlineSet.Store(now.UnixNano())
			b.rc.SetReadDeadline(now.Add(b.idle))
		}
	}
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF {
		b.eof.Store(true)
	}
	if b.idle > 0 && err != nil && !b.ended.Load() {
		// Done with the body, one way or another: the connection's next
		// read (the next request's, or net/http's watch for a client
		// going away) is net/http's to bound.
		b.rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodyStalled
	}
	return n, err
}

// Close closes the body the way net/http does (it reads what is left, up
// to 256 KiB, to keep the connection), but within the drain timeout; when
// that fails the connection closes after the answer.
func (b *bodyGuard) Close() error {
	if b.h2 || b.ended.Load() || b.eof.Load() || !b.closed.CompareAndSwap(false, true) {
		b.closed.Store(true)
		return b.ReadCloser.Close()
	}
	b.rc.SetReadDeadline(time.Now().Add(b.drain))
	err := b.ReadCloser.Close()
	if err != nil {
		b.abandon()
		return err
	}
	b.rc.SetReadDeadline(time.Time{})
	return nil
}

// errBodyStalled is a request body that made no progress for
// Config.BodyIdleTimeout.
var errBodyStalled = errors.New("agentg: the request body stalled (no bytes for the body idle timeout)")

// end is where every exchange with a body ends, after its answer is
// written and before the handler returns. It keeps the connection only
// when the body is read to its end.
func (b *bodyGuard) end() {
	if b == nil {
		return
	}
	defer b.ended.Store(true)
	if b.h2 || b.eof.Load() || b.closed.Load() {
		return // read, or closed: net/http knows what is left (Close above)
	}
	if b.length > drainMax+b.n.Load() {
		// Known too large to drain: said before the answer goes out
		// (net/http adds Connection: close when it can).
		b.abandon()
		return
	}
	b.rc.Flush() // the answer goes out now, whatever the body does
	b.rc.SetReadDeadline(time.Now().Add(b.drain))
	_, err := io.CopyN(io.Discard, b.ReadCloser, drainMax+1)
	if err == io.EOF {
		b.rc.SetReadDeadline(time.Time{})
		return
	}
	b.abandon()
}

// abandon gives up on the body: too large, too slow, or broken, whatever
// is left of it on the wire must never be read as another request. The
// connection closes after the answer, and net/http's own look at the body
// on the way out fails at once rather than waiting for it.
func (b *bodyGuard) abandon() {
	closeAfterAnswer(b.w)
	b.rc.SetReadDeadline(time.Now())
}

// closeAfterAnswer makes net/http close w's connection once its answer is
// written, even when the head is already out (a Connection header could
// no longer say so). http.MaxBytesReader is the one documented way to ask
// for that: it "tells the ResponseWriter to close the connection after the
// limit has been reached", which a one-byte read past a limit of zero
// does, without touching the request body.
func closeAfterAnswer(w http.ResponseWriter) {
	var p [1]byte
	http.MaxBytesReader(w, io.NopCloser(oneByte{}), 0).Read(p[:])
}

// oneByte yields a byte forever.
type oneByte struct{}

func (oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = 'x'
	return 1, nil
}
