package proxy

import (
	"context"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Serving the requests inside a tunnel: intercepted TLS once mitm has
// terminated it, plaintext HTTP/1 in a tunnel, and the transparent door's
// HTTP/1 connections. The proxy serves them itself, so a request inside a
// tunnel reaches the exchange path without any package calling back up
// into the proxy.

// inner is how the requests on one connection are served.
type inner struct {
	handler http.Handler
	// wrap, if set, wraps the plaintext of an HTTP/1 connection before
	// net/http reads it (agentg sees the heads net/http refuses).
	wrap func(net.Conn) net.Conn
	// protocolError, if set, is called when the HTTP/2 server refuses a
	// stream or the connection on its own (a reset for malformed headers,
	// a GOAWAY for a protocol error), with what it sent.
	protocolError func(kind string)
}

// serving is the limits requests inside a connection are served with: the
// proxy's own listener's (Server.inside), so that a tunnel is not a way
// around them.
type serving struct {
	idleTimeout       time.Duration
	readHeaderTimeout time.Duration
	maxHeaderBytes    int
	errorLog          *log.Logger
}

// serveConn serves the requests on conn with the proxy's limits.
func (s *Server) serveConn(ctx context.Context, conn net.Conn, proto string, in inner) {
	serveConn(ctx, conn, proto, in, s.inside)
}

// serveConn serves the requests on conn, whose protocol is proto ("h2",
// else HTTP/1.1), with in until the client goes away or ctx ends, and
// returns once every handler has returned.
func serveConn(ctx context.Context, conn net.Conn, proto string, in inner, cfg serving) {
	var wg sync.WaitGroup
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		in.handler.ServeHTTP(w, r)
	})
	if proto == "h2" {
		h2 := &http2.Server{IdleTimeout: cfg.idleTimeout}
		if in.protocolError != nil {
			conn = watchResets(conn, in.protocolError)
			defer conn.Close()
		}
		h2.ServeConn(conn, &http2.ServeConnOpts{
			Context:    ctx,
			Handler:    counted,
			BaseConfig: &http.Server{ErrorLog: cfg.errorLog, MaxHeaderBytes: cfg.maxHeaderBytes},
		})
	} else {
		if in.wrap != nil {
			conn = in.wrap(conn)
		}
		ln := newOneConnListener(conn)
		srv := &http.Server{
			Handler:           counted,
			ReadHeaderTimeout: cfg.readHeaderTimeout,
			IdleTimeout:       cfg.idleTimeout,
			MaxHeaderBytes:    cfg.maxHeaderBytes,
			ErrorLog:          cfg.errorLog,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ConnState: func(_ net.Conn, st http.ConnState) {
				if st == http.StateClosed || st == http.StateHijacked {
					ln.Close()
				}
			},
		}
		srv.Serve(ln)
	}
	wg.Wait()
}

// oneConnListener hands out one connection, then blocks until closed, so
// that an http.Server can serve a connection it did not accept.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	mu     sync.Mutex
	given  bool
}

var _ net.Listener = (*oneConnListener)(nil)

func newOneConnListener(c net.Conn) *oneConnListener {
	return &oneConnListener{conn: c, closed: make(chan struct{})}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.given {
		l.given = true
		l.mu.Unlock()
		return l.conn, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
