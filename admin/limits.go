package admin

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
)

// Bounds on what a client can hold of the admin API. Left to net/http, a
// request whose body the API does not read (every 401, 404 and 405, and
// endpoints that take no body) has up to 256 KiB of it read before the
// answer is written: a client sending a byte now and then holds an
// unauthenticated connection open with no answer, and a few hundred such
// connections would take the file descriptors agents need. So:
//   - a request's head must arrive within Config.ReadHeaderTimeout, its
//     whole body within Config.BodyTimeout;
//   - an answer to a request whose body was not read to its end says
//     Connection: close and goes out at once, and the body is not waited
//     for;
//   - at most Config.MaxConns connections are open at once; more wait in
//     the kernel's accept queue, holding no descriptor of agentg's.

// Defaults of the bounds above.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout       = 10 * time.Second
	DefaultMaxConns          = 64
)

// limitListener caps the connections open at once on ln.
func limitListener(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, max)
}

// boundBody gives r's body cfg.BodyTimeout to arrive whole, and returns
// the writer to answer with: one that closes the connection instead of
// waiting for a body that was not read, and a function to call when the
// handler is done. A request without a body is left as it is.
func (s *Server) boundBody(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return w, func() {}
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	b := &eofBody{ReadCloser: r.Body, rc: rc}
	r.Body = b
	uw := &unreadAnswer{ResponseWriter: w, body: b}
	return uw, func() {
		if !b.eof.Load() {
			// net/http closes the body once the answer is out: it must
			// fail at once, not wait for the rest.
			uw.closeIfUnread()
			rc.SetReadDeadline(time.Now())
		}
	}
}

// eofBody records that a body was read to its end, and then lifts the
// body's deadline: net/http's watch for the client going away reads the
// connection next, and must not cancel a handler still at work.
type eofBody struct {
	io.ReadCloser
	rc  *http.ResponseController
	eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.eof.Swap(true) {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// unreadAnswer adds Connection: close to an answer written while the
// request's body is not read to its end, so net/http neither reads the
// rest before answering nor reads it as the next request.
type unreadAnswer struct {
	http.ResponseWriter
	body  *eofBody
	wrote bool
}

func (u *unreadAnswer) closeIfUnread() {
	if !u.wrote && !u.body.eof.Load() {
		u.Header().Set("Connection", "close")
	}
}

func (u *unreadAnswer) WriteHeader(code int) {
	u.closeIfUnread()
	u.wrote = true
	u.ResponseWriter.WriteHeader(code)
}

func (u *unreadAnswer) Write(p []byte) (int, error) {
	if !u.wrote {
		u.WriteHeader(http.StatusOK)
	}
	return u.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (u *unreadAnswer) Unwrap() http.ResponseWriter { return u.ResponseWriter }
