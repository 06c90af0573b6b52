// Package mitm terminates TLS inside an allowed CONNECT tunnel, so that
// policy can see each HTTP request, and opens verified TLS toward the
// upstream on the proxy's behalf.
//
// The contract: the client is served a leaf for the tunnel's host and for
// nothing else: a ClientHello whose SNI names another host is refused
// during the handshake (no domain fronting through a permitted tunnel), one
// without SNI is served the tunnel's host and reported. Both HTTP/1.1 and
// HTTP/2 are offered by ALPN; Terminate returns the plaintext connection
// and what was negotiated, and the caller serves the requests inside (mitm
// calls nothing of the caller's and makes no decisions). Upstream certificates are
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
	"net"
	"net/http"
	"time"

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
}

// Interceptor terminates intercepted tunnels. It is safe for concurrent use.
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

// Terminate terminates TLS on conn, the client side of a tunnel to host
// that has already been answered with 200, and returns the connection's
// plaintext side for the caller to serve: mitm serves nothing itself, so
// every request inside reaches the caller on its own path, not through a
// handler handed down here and called back.
func (i *Interceptor) Terminate(ctx context.Context, conn net.Conn, host addr.Host) (*tls.Conn, Tunnel, error) {
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
		return nil, tun, fmt.Errorf("client TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	tun.ALPN, tun.TLSVersion = st.NegotiatedProtocol, tls.VersionName(st.Version)
	return tc, tun, nil
}
