package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/agentg/agentg/mitm"
	"github.com/agentg/agentg/rules"
)

// interceptTunnel runs an intercepted CONNECT tunnel: it answers 200, hands
// the client connection to mitm for TLS, and decides every request inside.
// goproxy calls it on the CONNECT request's goroutine, so the tunnel's own
// event is written by ServeHTTP when it returns.
func (s *Server) interceptTunnel(r *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
	f := flowFrom(r.Context())
	defer client.Close()
	s.trackTunnel(client, true)
	defer s.trackTunnel(client, false)
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		f.setStatus(http.StatusOK, err.Error())
		return
	}
	cc := &countingConn{Conn: client, f: f}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveIntercepted(f, w, r) })
	tun, err := s.mitm.Serve(context.WithoutCancel(r.Context()), cc, f.host, inner)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.alpn, f.tlsVersion = tun.ALPN, tun.TLSVersion
	switch {
	case errors.Is(err, mitm.ErrSNIMismatch):
		f.decision = rules.Decision{Action: rules.Deny, Rule: "builtin:sni-mismatch", Reason: err.Error()}
	case err != nil:
		f.err = err.Error()
	case tun.SNI == "":
		f.decision.Reason = "client sent no SNI; served the CONNECT host " + f.host.Name
	}
}

// serveIntercepted decides one request inside an intercepted tunnel: the
// tunnel was authorised once, each request is authorised again (its
// authority, the host rules as they are now, the HTTP rules) and becomes
// its own event.
func (s *Server) serveIntercepted(tunnel *flow, w http.ResponseWriter, r *http.Request) {
	f := &flow{
		start: time.Now(), client: tunnel.client, method: r.Method, scheme: "https", path: r.URL.EscapedPath(),
		agent: tunnel.agent, host: tunnel.host, ips: tunnel.ips, tls: "intercepted",
	}
	defer s.emit(f)
	if ref := checkAuthority(r.Host, 443, f.host); ref != nil {
		s.writeRefusal(w, f, ref)
		return
	}
	if ambiguousPath(r.URL) {
		s.writeRefusal(w, f, &refusal{status: http.StatusBadRequest,
			text: "agentg: ambiguous request path (dot segments, empty segments, encoded or back slashes)"})
		return
	}
	eng := s.cfg.Policy.Engine()
	f.decision = eng.Host(f.agent, f.host)
	if f.decision.Allowed() {
		f.decision = eng.HTTP(f.agent, f.host, r.Method, r.URL.Path)
	}
	if !f.decision.Allowed() {
		s.writeRefusal(w, f, s.denied(f))
		return
	}
	ctx := traceDialed(withFlow(r.Context(), f), f)
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, n: &f.up}
	}
	s.rp.ServeHTTP(w, r)
}

// interceptedReverseProxy forwards intercepted requests, streaming bodies
// as they come (SSE and chunked responses are flushed at once) and passing
// WebSocket upgrades through.
func (s *Server) interceptedReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			f := flowFrom(pr.In.Context())
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = authority(f.host, 443)
			pr.Out.Host = pr.Out.URL.Host
		},
		Transport: s.mitm.Transport(),
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
				f.tlsVersion = tlsVersionName(resp.TLS.Version)
				f.alpn = resp.TLS.NegotiatedProtocol
				f.mu.Unlock()
			}
			resp.Body = countResponseBody(resp.Body, f)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f := flowFrom(r.Context())
			s.writeRefusal(w, f, &refusal{status: http.StatusBadGateway,
				text: "agentg: upstream " + f.host.String() + " failed: " + err.Error()})
		},
	}
}

// writeRefusal answers through a ResponseWriter what refuse answers as a
// goproxy response.
func (s *Server) writeRefusal(w http.ResponseWriter, f *flow, ref *refusal) {
	recordRefusal(f, ref)
	for k, v := range ref.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(ref.status)
	io.WriteString(w, ref.text+"\n")
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

// ambiguousPath reports a request path that the policy and the upstream
// could read as different paths: dot or empty segments, which servers
// resolve differently, and encoded slashes or backslashes, which some
// servers decode into separators. Path rules decide on the decoded path, so
// such requests are refused rather than guessed at.
func ambiguousPath(u *url.URL) bool {
	raw := u.EscapedPath()
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && (raw[i+1] == '2' && (raw[i+2] == 'f' || raw[i+2] == 'F') ||
			raw[i+1] == '5' && (raw[i+2] == 'c' || raw[i+2] == 'C')) {
			return true
		}
	}
	p := u.Path
	if strings.IndexByte(p, '\\') >= 0 {
		return true
	}
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return strings.Contains(p, "//")
}

// copyBuffers lends ReverseProxy its 32 KiB copy buffers, which it would
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
