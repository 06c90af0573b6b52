// Package mitm terminates TLS inside an allowed CONNECT tunnel, so that
// policy can see each HTTP request, and opens verified TLS toward the
// upstream on the proxy's behalf.
//
// The contract: the client is served a leaf for the tunnel's host and for
// nothing else: a ClientHello whose SNI names another host is refused
// during the handshake (no domain fronting through a permitted tunnel), one
// without SNI is served the tunnel's host and reported. Both HTTP/1.1 and
// HTTP/2 are offered by ALPN and served. Every request inside is handed to
// the caller's handler; mitm makes no decisions. Upstream certificates are
// verified against the system roots plus configured extra roots, and a
// failed verification is an error, never bypassed. mitm does not create or
// store keys: leaves come from certs.Issuer.
package mitm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/certs"
)

// DialFunc dials the upstream; the proxy passes its checked dialer, which
// reads the destination from the request's context.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Config configures an Interceptor. Issuer and Dial are required.
type Config struct {
	Issuer *certs.Issuer
	Dial   DialFunc
	// Roots verifies upstream certificates; nil means the system roots.
	Roots *x509.CertPool
	// HandshakeTimeout bounds the client handshake; default 10s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes an intercepted connection with no requests;
	// default 2m.
	IdleTimeout time.Duration
	// ErrorLog receives net/http's errors for intercepted connections.
	ErrorLog *log.Logger
	// MaxHeaderBytes bounds a request head inside a tunnel, as on the
	// proxy's own listener; default 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the wait for each HTTP/1 request head
	// inside a tunnel, as on the proxy's own listener; default 30s.
	ReadHeaderTimeout time.Duration
}

// Inner is how the requests inside a tunnel are served.
type Inner struct {
	Handler http.Handler
	// Wrap, if set, wraps the plaintext of an HTTP/1 connection before
	// net/http reads it (agentg sees the heads net/http refuses).
	Wrap func(net.Conn) net.Conn
	// ProtocolError, if set, is called when the HTTP/2 server refuses a
	// stream or the connection on its own (a reset for malformed headers,
	// a GOAWAY for a protocol error), with what it sent.
	ProtocolError func(kind string)
}

// Interceptor serves intercepted tunnels. It is safe for concurrent use.
type Interceptor struct {
	cfg      Config
	upstream *http.Transport // the template of UpstreamTransport
}

// New returns an Interceptor.
func New(cfg Config) (*Interceptor, error) {
	if cfg.Issuer == nil || cfg.Dial == nil {
		return nil, errors.New("mitm: Config.Issuer and Config.Dial are required")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           cfg.Dial,
		TLSClientConfig:       &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.HandshakeTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	return &Interceptor{cfg: cfg, upstream: tr}, nil
}

// UpstreamTransport returns a new transport for intercepted requests: TLS
// to the request URL's host (which is also the SNI and the name
// verified), through the configured dialer. Each has its own connection
// pool, so the caller can keep pools apart by what it checked.
func (i *Interceptor) UpstreamTransport() *http.Transport { return i.upstream.Clone() }

// CloseIdleConnections drops pooled upstream connections.
func (i *Interceptor) CloseIdleConnections() { i.upstream.CloseIdleConnections() }

// Tunnel describes the client side of an intercepted tunnel.
type Tunnel struct {
	SNI        string // the server name the client sent, "" if none
	ALPN       string // "h2" or "http/1.1" (or "" when the client offered none)
	TLSVersion string
}

// ErrSNIMismatch is returned when the client's SNI names a host other
// than the tunnel's.
var ErrSNIMismatch = errors.New("SNI does not match the CONNECT host")

// Serve terminates TLS on conn, the client side of a tunnel to host that
// has already been answered with 200, and serves every request inside
// with in until the client goes away or ctx ends. It returns once the
// tunnel is finished and every handler has returned.
func (i *Interceptor) Serve(ctx context.Context, conn net.Conn, host addr.Host, in Inner) (Tunnel, error) {
	var tun Tunnel
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			tun.SNI = hello.ServerName
			if hello.ServerName != "" {
				sni, err := addr.Canonical(hello.ServerName)
				if err != nil || sni.Name != host.Name {
					return nil, fmt.Errorf("%w: SNI %q, CONNECT %s", ErrSNIMismatch, hello.ServerName, host.Name)
				}
			}
			return i.cfg.Issuer.Leaf(host.Name)
		},
	}
	tc := tls.Server(conn, conf)
	hctx, cancel := context.WithTimeout(ctx, i.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		return tun, fmt.Errorf("client TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	tun.ALPN, tun.TLSVersion = st.NegotiatedProtocol, tls.VersionName(st.Version)
	ServeConn(ctx, tc, st.NegotiatedProtocol, in, i.cfg.serving())
	return tun, nil
}

// Serving is how ServeConn serves requests.
type Serving struct {
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	ErrorLog       *log.Logger
	// ReadHeaderTimeout bounds the wait for each HTTP/1 request head;
	// 0 means 30s.
	ReadHeaderTimeout time.Duration
}

func (c *Config) serving() Serving {
	return Serving{IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes, ErrorLog: c.ErrorLog, ReadHeaderTimeout: c.ReadHeaderTimeout}
}

// ServeConn serves the requests on conn, whose protocol is proto ("h2",
// else HTTP/1.1), with in until the client goes away or ctx ends, and
// returns once every handler has returned. Serve calls it after the
// handshake; the proxy calls it for plaintext HTTP/1 inside a tunnel.
func ServeConn(ctx context.Context, conn net.Conn, proto string, in Inner, cfg Serving) {
	var wg sync.WaitGroup
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		in.Handler.ServeHTTP(w, r)
	})
	if proto == "h2" {
		h2 := &http2.Server{IdleTimeout: cfg.IdleTimeout}
		if in.ProtocolError != nil {
			conn = watchResets(conn, in.ProtocolError)
			defer conn.Close()
		}
		h2.ServeConn(conn, &http2.ServeConnOpts{
			Context:    ctx,
			Handler:    counted,
			BaseConfig: &http.Server{ErrorLog: cfg.ErrorLog, MaxHeaderBytes: cfg.MaxHeaderBytes},
		})
	} else {
		if in.Wrap != nil {
			conn = in.Wrap(conn)
		}
		ln := newOneConnListener(conn)
		rht := cfg.ReadHeaderTimeout
		if rht <= 0 {
			rht = 30 * time.Second
		}
		srv := &http.Server{
			Handler:           counted,
			ReadHeaderTimeout: rht,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          cfg.ErrorLog,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateClosed || s == http.StateHijacked {
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
