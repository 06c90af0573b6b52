package testenv

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
)

// UpstreamOptions say how to serve an Upstream.
type UpstreamOptions struct {
	// Handler answers requests; nil means Echo.
	Handler http.Handler
	// TLS serves HTTPS with httptest's own certificate (for 127.0.0.1 and
	// example.com) unless Cert is set; Cert implies TLS.
	TLS  bool
	Cert *tls.Certificate
	// HTTP2 offers h2 by ALPN (TLS only); otherwise only HTTP/1.1 is
	// spoken, as through a CONNECT tunnel by a client that does not force
	// HTTP/2.
	HTTP2 bool
	// Quiet discards the server's error log (handshake errors of clients
	// that hang up), which a load run would otherwise print by the
	// thousand.
	Quiet bool
	// Listener, when set, is where the server listens instead of a free
	// loopback port (one a test opened inside a network namespace).
	Listener net.Listener
}

// Upstream is a loopback origin server that counts the connections it has
// accepted. Close it when done.
type Upstream struct {
	*httptest.Server
	Port  string // the port it listens on, for URLs naming a test host
	conns atomic.Int64
}

// StartUpstream serves o.Handler on a free loopback port.
func StartUpstream(o UpstreamOptions) *Upstream {
	h := o.Handler
	if h == nil {
		h = http.HandlerFunc(Echo)
	}
	u := &Upstream{Server: httptest.NewUnstartedServer(h)}
	if o.Listener != nil {
		u.Listener.Close()
		u.Listener = o.Listener
	}
	// httptest wraps this ConnState with its own, so both run.
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	if o.Quiet {
		u.Config.ErrorLog = log.New(io.Discard, "", 0)
	}
	u.EnableHTTP2 = o.HTTP2
	if o.Cert != nil {
		u.TLS = &tls.Config{Certificates: []tls.Certificate{*o.Cert}}
	}
	if o.TLS || o.Cert != nil {
		u.StartTLS()
	} else {
		u.Start()
	}
	_, u.Port, _ = net.SplitHostPort(u.Listener.Addr().String())
	return u
}

// ConnCount is how many connections the upstream has accepted (for TLS:
// TCP connections, whether or not the handshake completed).
func (u *Upstream) ConnCount() int64 { return u.conns.Load() }

// HostPort names the upstream as host:port, for a URL through a proxy
// whose policy resolves host to loopback.
func (u *Upstream) HostPort(host string) string { return net.JoinHostPort(host, u.Port) }

// Echo answers with what it received: method, path, Host and body length,
// and the Host in X-Upstream-Host.
func Echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Upstream-Host", r.Host)
	fmt.Fprintf(w, "%s %s host=%s len=%d", r.Method, r.URL.Path, r.Host, len(body))
}

// chunk is what Sized writes from: 64 KiB, never written to.
var chunk = bytes.Repeat([]byte("0123456789abcdef"), 4096)

// Sized answers any path with a body of ?n=N bytes (with Content-Length),
// generated as it is written, so a gigabyte costs no memory; a missing or
// bad n is 400.
func Sized(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 {
		http.Error(w, "bad n", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		n -= k
	}
}
