package mitm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/certs"
)

func newInterceptor(t *testing.T) (*Interceptor, *x509.CertPool) {
	t.Helper()
	ca, err := certs.Init(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := certs.NewIssuer(ca, certs.IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noDial := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no upstream in this test")
	}
	i, err := New(Config{Issuer: iss, Dial: noDial, HandshakeTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	return i, pool
}

// serveOne runs Serve on the server side of a loopback TCP pair and
// returns the client side and Serve's result channel.
func serveOne(t *testing.T, i *Interceptor, host string, h http.Handler) (net.Conn, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Closed only once the connection is accepted: closing a listener
		// with a connection still in its backlog resets that connection.
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		hh, _ := addr.ParseAuthority(host, 443)
		tc, tun, err := i.Terminate(context.Background(), c, hh)
		if err == nil {
			serveTerminated(tc, tun.ALPN, h)
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, done
}

// serveTerminated serves what Terminate returned in the protocol it
// negotiated, as the proxy does: mitm's part ends at the handshake.
func serveTerminated(c net.Conn, alpn string, h http.Handler) {
	if alpn == "h2" {
		(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{Handler: h})
		return
	}
	srv := &http.Server{Handler: h}
	ln := &singleListener{c: make(chan net.Conn, 1), addr: c.LocalAddr()}
	ln.c <- c
	srv.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			srv.Close()
		}
	}
	srv.Serve(ln)
}

// singleListener accepts the one connection it holds, then waits to be
// closed.
type singleListener struct {
	c    chan net.Conn
	addr net.Addr
	once sync.Once
}

func (l *singleListener) Accept() (net.Conn, error) {
	if c, ok := <-l.c; ok {
		return c, nil
	}
	return nil, net.ErrClosed
}

func (l *singleListener) Close() error {
	l.once.Do(func() { close(l.c) })
	return nil
}

func (l *singleListener) Addr() net.Addr { return l.addr }

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, r.Proto+" "+r.Host+r.URL.Path)
})

func TestServeHTTP1AndHTTP2(t *testing.T) {
	i, pool := newInterceptor(t)
	for _, proto := range []string{"http/1.1", "h2"} {
		c, done := serveOne(t, i, "api.example:443", hello)
		tc := tls.Client(c, &tls.Config{ServerName: "api.example", RootCAs: pool, NextProtos: []string{proto}})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("%s handshake: %v", proto, err)
		}
		if got := tc.ConnectionState().NegotiatedProtocol; got != proto {
			t.Fatalf("negotiated %q, want %q", got, proto)
		}
		var rt http.RoundTripper = &http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return tc, nil }}
		if proto == "h2" {
			h2c, err := (&http2.Transport{}).NewClientConn(tc)
			if err != nil {
				t.Fatal(err)
			}
			rt = h2c
		}
		req, _ := http.NewRequest("GET", "https://api.example/x", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s request: %v", proto, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasSuffix(string(body), "api.example/x") {
			t.Errorf("%s: body %q", proto, body)
		}
		tc.Close()
		if err := <-done; err != nil {
			t.Errorf("%s: Serve: %v", proto, err)
		}
	}
}

func TestServeRefusesOtherSNI(t *testing.T) {
	i, pool := newInterceptor(t)
	c, done := serveOne(t, i, "api.example:443", hello)
	tc := tls.Client(c, &tls.Config{ServerName: "evil.example", RootCAs: pool})
	if err := tc.Handshake(); err == nil {
		t.Fatal("handshake for another SNI succeeded")
	}
	if err := <-done; !errors.Is(err, ErrSNIMismatch) {
		t.Errorf("Serve: %v, want ErrSNIMismatch", err)
	}
}

func TestServeRejectsGarbage(t *testing.T) {
	i, _ := newInterceptor(t)
	c, done := serveOne(t, i, "api.example:443", hello)
	io.WriteString(c, "this is not a ClientHello\r\n\r\n")
	if err := <-done; err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("Serve: %v, want a handshake error", err)
	}
}
