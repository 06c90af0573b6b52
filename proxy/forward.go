package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/agentg/agentg/internal/lru"
	"github.com/agentg/agentg/rules"
)

// The one forwarder. Every request the exchange path allows is sent by
// newForwarder's ReverseProxy: RFC 9110 §7.6.1 hop-by-hop handling (the
// Connection-listed headers and the hop-by-hop set, Proxy-Authorization
// among them, are removed), no User-Agent added, no X-Forwarded-* added,
// event streams and bodies of unknown length flushed as they come,
// WebSocket upgrades passed through, and the upstream answer counted.
//
// Upstream connections are pooled per checked destination: the pool key
// is the scheme, the canonical authority and the exact set of addresses
// the request's check allowed, and, for a request a credential binding
// with a client certificate matched, that binding and certificate. A
// pooled connection was dialed for a request whose check allowed the same
// addresses and that presented the same certificate or none, so any
// request that finds it may use it, whoever the agent: a connection is
// never closed under another request because this one may not use it, and
// a connection that authenticated as a binding's certificate carries only
// requests that binding matched (another agent, another path, another
// binding dials its own). Such a transport keeps no TLS session cache: a
// resumed session carries the authentication of the one it resumes.

// upstream is the one forwarder bound to one exchange's flow: what the
// exchange path calls to send a request on, and what it hands the MCP
// guard as its Exchange's Upstream. The flow is put in the request's
// context here, on the way into the forwarder, for its hooks to find:
// never before, so no other package carries it.
type upstream struct {
	s *Server
	f *flow
}

func (u upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.s.fwd.ServeHTTP(w, r.WithContext(withFlow(r.Context(), u.f)))
}

func (s *Server) newForwarder() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			f := flowFrom(pr.In.Context())
			defPort := uint16(80)
			if f.scheme == "https" {
				defPort = 443
			}
			pr.Out.URL.Scheme = f.scheme
			pr.Out.URL.Host = authority(f.host, defPort)
			pr.Out.Host = pr.Out.URL.Host
			if len(f.ips) == 1 {
				// The pool's connections for this key all go to the one
				// address the check allowed: no need to watch which.
				f.setDialed(f.ips[0])
			} else {
				pr.Out = pr.Out.WithContext(traceDialed(pr.Out.Context(), f))
			}
		},
		Transport: (*pools)(s),
		// Event streams and bodies of unknown length are flushed as they
		// come anyway (ReverseProxy does that for text/event-stream and
		// ContentLength -1); flushing every write of a sized body would
		// only split it into more TLS records.
		FlushInterval: 0,
		BufferPool:    &copyBuffers{},
		ErrorLog:      newStdLogger(s.log),
		ModifyResponse: func(resp *http.Response) error {
			f := flowFrom(resp.Request.Context())
			f.setStatus(resp.StatusCode, "")
			if resp.TLS != nil {
				f.mu.Lock()
				f.tlsVersion = tls.VersionName(resp.TLS.Version)
				f.alpn = resp.TLS.NegotiatedProtocol
				f.mu.Unlock()
			}
			resp.Body = countResponseBody(resp.Body, f)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f := flowFrom(r.Context())
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				f.setStatus(499, "client went away")
				return
			}
			if errors.Is(err, errSelf) {
				s.writeRefusal(w, f, denied(f)) // the dialer found agentg itself (self.go)
				return
			}
			if errors.Is(err, errQuotaSpent) && f.meter != nil {
				s.writeRefusal(w, f, f.meter.refusal()) // the request body spent a bytes quota
				return
			}
			s.writeRefusal(w, f, &refusal{status: http.StatusBadGateway,
				text: "agentg: upstream " + f.host.String() + " failed: " + err.Error()})
		},
	}
}

// pools is the forwarder's RoundTripper: it picks the transport whose
// connections were dialed to exactly the addresses this request may use.
type pools Server

func (p *pools) RoundTrip(r *http.Request) (*http.Response, error) {
	s := (*Server)(p)
	f := flowFrom(r.Context())
	if f == nil || len(f.ips) == 0 {
		return nil, errors.New("agentg: refusing to forward an unchecked request")
	}
	return s.upstreams.get(poolKey(f), f.scheme == "https", f.clientCert).RoundTrip(r)
}

func poolKey(f *flow) string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString(f.scheme)
	b.WriteByte(' ')
	b.WriteString(f.host.String())
	ips := f.ips
	if len(ips) > 1 && !slices.IsSortedFunc(ips, netip.Addr.Compare) {
		ips = slices.Clone(ips)
		slices.SortFunc(ips, netip.Addr.Compare)
	}
	for _, ip := range ips {
		b.WriteByte(' ')
		b.WriteString(ip.String())
	}
	if f.clientCert != nil {
		// "|" is in no address: no key without a certificate can equal
		// one with, and the certificate's fixed-length fingerprint ends
		// the key.
		b.WriteString(" |mtls ")
		b.WriteString(f.clientCert.PoolKey())
	}
	return b.String()
}

// transportPool holds one transport per checked destination, the least
// recently used dropped (idle connections closed) past max.
type transportPool struct {
	plain, tls *http.Transport // templates
	cache      *lru.Cache[*http.Transport]
	miss       sync.Mutex // one miss at a time makes a key's transport, so none is made twice and dropped unclosed
}

func newTransportPool(plain, tls *http.Transport, max int) *transportPool {
	evict := func(_ string, tr *http.Transport) { tr.CloseIdleConnections() }
	return &transportPool{plain: plain, tls: tls, cache: lru.New(max, evict)}
}

func (p *transportPool) get(key string, useTLS bool, cert *rules.ClientCert) *http.Transport {
	if tr, ok := p.cache.Get(key); ok {
		return tr
	}
	p.miss.Lock()
	defer p.miss.Unlock()
	if tr, ok := p.cache.Get(key); ok {
		return tr
	}
	tmpl := p.plain
	if useTLS && p.tls != nil {
		tmpl = p.tls
	}
	// https is forwarded from intercepted tunnels and for Send; p.tls is
	// the interceptor's upstream transport, or one verifying against the
	// same roots without one.
	tr := tmpl.Clone()
	if cert != nil && useTLS {
		presentCert(tr, cert)
	}
	p.cache.Put(key, tr)
	return tr
}

// presentCert makes tr present cert when an upstream asks for a client
// certificate. Clone gave tr its own TLS config; verifying the upstream
// stays as the template does it.
func presentCert(tr *http.Transport, cert *rules.ClientCert) {
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c := cert.Certificate()
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c, nil }
	tr.TLSClientConfig.Certificates = nil
	// A session this transport resumes was authenticated by the
	// certificate; one from a shared cache could be resumed by a
	// transport that presents none.
	tr.TLSClientConfig.ClientSessionCache = nil
}

func (p *transportPool) closeIdle() {
	p.cache.Range(func(_ string, tr *http.Transport) { tr.CloseIdleConnections() })
}

// traceDialed records which address the request's connection goes to, for
// the event; the pool guarantees it is one the check allowed.
func traceDialed(ctx context.Context, f *flow) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if ta, ok := info.Conn.RemoteAddr().(*net.TCPAddr); ok {
			f.setDialed(ta.AddrPort().Addr().Unmap())
		}
	}})
}
