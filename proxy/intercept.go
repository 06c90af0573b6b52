package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/agentg/agentg/dissect"
	"github.com/agentg/agentg/mitm"
	"github.com/agentg/agentg/rules"
)

// interceptTunnel runs a tunnel to an intercepted host: it answers 200,
// reads the first bytes, and serves what it finds on the exchange path:
// TLS terminated by mitm, or HTTP/1 as it is (Node's proxy agent tunnels
// http:// URLs through CONNECT). Anything else cannot be seen into, so on
// an intercepted host it is refused. The tunnel's own event is written by
// serveConnect when this returns.
func (s *Server) interceptTunnel(ctx context.Context, t *tunnel, client net.Conn) {
	f := t.f
	if !t.established(client) {
		return
	}
	s.events.emitOpen(f)
	br := bufio.NewReaderSize(client, 4096)
	proto, err := s.sniff(client, br)
	if err != nil {
		f.deny(gateDeny(err))
		return
	}
	conn := &bufferedConn{Conn: client, br: br}
	switch proto {
	case dissect.HTTP1:
		s.serveTunnelHTTP(ctx, t, conn, "http")
	case dissect.TLS:
		s.serveTunnelTLS(ctx, t, conn)
	default:
		f.deny(rules.Decision{Action: rules.Deny, Rule: "builtin:tls-gate",
			Reason: "the tunnel's first bytes are neither TLS nor HTTP/1, and the host is intercepted"})
	}
}

func (s *Server) serveTunnelTLS(ctx context.Context, t *tunnel, conn net.Conn) {
	f := t.f
	cc := &countingConn{Conn: conn, f: f}
	tc, tun, err := s.mitm.Terminate(context.WithoutCancel(ctx), cc, f.host)
	f.mu.Lock()
	f.alpn, f.tlsVersion = tun.ALPN, tun.TLSVersion
	switch {
	case errors.Is(err, mitm.ErrSNIMismatch):
		f.decision = rules.Decision{Action: rules.Deny, Rule: "builtin:sni-mismatch", Reason: err.Error()}
	case err != nil:
		f.err = err.Error()
	case tun.SNI == "":
		f.decision.Reason = "client sent no SNI; served the CONNECT host " + f.host.Name
	}
	f.mu.Unlock()
	if err != nil {
		return
	}
	s.serveConn(context.WithoutCancel(ctx), tc, tun.ALPN, s.inner(t, "https"))
}

// serveTunnelHTTP serves plaintext HTTP/1 inside a tunnel, plain or
// intercepted, on the exchange path.
func (s *Server) serveTunnelHTTP(ctx context.Context, t *tunnel, conn net.Conn, scheme string) {
	s.serveConn(context.WithoutCancel(ctx), conn, "http/1.1", s.inner(t, scheme))
}

// inner is how the requests of tunnel t are served: each on the exchange
// path, and every head or stream net/http refuses on its own an event of
// agentg's, inside the tunnel.
func (s *Server) inner(t *tunnel, scheme string) inner {
	return s.innerAt(t, scheme, doorTunnel)
}

// innerAt is inner for requests that come in at door d: doorTunnel, or
// doorTransparent for a transparent HTTP/1 connection, whose requests
// each name their own host.
func (s *Server) innerAt(t *tunnel, scheme string, d door) inner {
	f := t.f
	bad := func(status int, reason string) { s.events.logMalformed(f.id, f.client, status, reason) }
	return inner{
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serveExchange(w, r, exchange{door: d, scheme: scheme, tunnel: f})
		}),
		wrap: func(c net.Conn) net.Conn {
			return newHostTracker(c, s.cfg.MaxHeaderBytes, bad, false)
		},
		protocolError: func(kind string) { bad(http.StatusBadRequest, "HTTP/2 "+kind) },
	}
}

// countingConn counts the raw bytes of an intercepted tunnel's client side.
type countingConn struct {
	net.Conn
	f *flow
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.f.up.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.f.down.Add(int64(n))
	return n, err
}

// copyBuffers lends the forwarder its 32 KiB copy buffers, which it would
// otherwise allocate for every response.
type copyBuffers struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *copyBuffers) Get() []byte {
	if buf, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return buf[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *copyBuffers) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}
