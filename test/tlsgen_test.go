package test

// Helpers for the tests of the tunnel gate and of what runs inside tunnels:
// ClientHellos written by a real crypto/tls client, TLS record surgery,
// upstreams that record every byte they receive, an ECH key pair, and an
// HTTP/2 client driven frame by frame.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/agentg/agentg/proxy"
)

// captureHello returns what a crypto/tls client configured with conf writes
// before it waits for the server: its ClientHello, as TLS records.
func captureHello(t *testing.T, conf *tls.Config) []byte {
	t.Helper()
	c := &captureConn{}
	tls.Client(c, conf).Handshake() // fails at its first read, after the hello
	if len(c.out) < 5 || c.out[0] != 0x16 {
		t.Fatalf("captured %d bytes, not a ClientHello record", len(c.out))
	}
	return c.out
}

// captureConn takes every write and has nothing to read.
type captureConn struct{ out []byte }

func (c *captureConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *captureConn) Write(p []byte) (int, error)      { c.out = append(c.out, p...); return len(p), nil }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *captureConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// helloFor is the ClientHello of a Go client asking for sni. Only X25519
// is offered, which keeps the hello small (no post-quantum key share).
func helloFor(t *testing.T, sni string) []byte {
	t.Helper()
	return captureHello(t, &tls.Config{ServerName: sni, CurvePreferences: []tls.CurveID{tls.X25519}})
}

// splitRecord cuts one TLS record in two records of the same type and
// version, the first carrying at bytes of the payload: a ClientHello split
// this way is still one valid ClientHello (RFC 8446, 5.1).
func splitRecord(rec []byte, at int) []byte {
	hdr, body := rec[:3], rec[5:]
	out := append([]byte{}, hdr...)
	out = binary.BigEndian.AppendUint16(out, uint16(at))
	out = append(out, body[:at]...)
	out = append(out, hdr...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(body)-at))
	return append(out, body[at:]...)
}

// recorder keeps every byte an upstream read, across its connections, and
// knows how many of them are still open.
type recorder struct {
	mu    sync.Mutex
	got   bytes.Buffer
	conns int
	open  int
}

func (r *recorder) wrap(c net.Conn) net.Conn {
	r.mu.Lock()
	r.conns++
	r.open++
	r.mu.Unlock()
	return &recordingConn{Conn: c, r: r}
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.got.Bytes())
}

// settled waits until every connection the upstream accepted is closed, so
// that whatever was sent to it has been read and recorded.
func (r *recorder) settled(t *testing.T) {
	t.Helper()
	waitFor(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.open == 0
	}, "the upstream's connections to close")
}

type recordingConn struct {
	net.Conn
	r    *recorder
	once sync.Once
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.got.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

func (c *recordingConn) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		c.r.open--
		c.r.mu.Unlock()
	})
	return c.Conn.Close()
}

type recordingListener struct {
	net.Listener
	r *recorder
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.r.wrap(c), nil
}

// rawUpstream is a TCP origin on loopback that hands each connection,
// recorded, to serve (nil: read until EOF), and closes it when serve
// returns.
type rawUpstream struct {
	*recorder
	port string
}

func newRawUpstream(t *testing.T, serve func(c net.Conn)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u := &rawUpstream{recorder: &recorder{}}
	_, u.port, _ = net.SplitHostPort(ln.Addr().String())
	if serve == nil {
		serve = func(c net.Conn) { io.Copy(io.Discard, c) }
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rc := u.wrap(c)
			go func() {
				defer rc.Close()
				rc.SetDeadline(time.Now().Add(30 * time.Second))
				serve(rc)
			}()
		}
	}()
	return u
}

// bannerThenEcho answers a client line with its own banner and then echoes:
// a stand-in for SSH or any protocol that is neither TLS nor HTTP.
func bannerThenEcho(c net.Conn) {
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		return
	}
	io.WriteString(c, "SSH-2.0-upstream\r\n")
	io.Copy(c, br)
}

// recordingTLSUpstream serves h over TLS with conf on loopback, recording
// the raw bytes (TLS records) it receives.
func recordingTLSUpstream(t *testing.T, conf *tls.Config, h http.Handler) (*upstream, *recorder) {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(echoHandler)
	}
	rec := &recorder{}
	u := &upstream{Server: httptest.NewUnstartedServer(h)}
	u.Listener = recordingListener{u.Listener, rec}
	u.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point, not noise
	u.TLS = conf
	u.StartTLS()
	_, u.port, _ = net.SplitHostPort(u.Listener.Addr().String())
	t.Cleanup(u.Close)
	return u, rec
}

// echKeys makes an ECH configuration (X25519, HKDF-SHA256, AES-128-GCM)
// whose outer SNI is publicName: the ECHConfigList a client is given and
// the key a server decrypts the inner hello with.
func echKeys(t *testing.T, publicName string) (list []byte, key tls.EncryptedClientHelloKey) {
	t.Helper()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	pub := priv.PublicKey().Bytes()
	body := []byte{1}           // config_id
	body = u16(body, 0x0020)    // DHKEM(X25519, HKDF-SHA256)
	body = u16(body, len(pub))  // public_key
	body = append(body, pub...) //
	body = u16(body, 4)         // cipher_suites: HKDF-SHA256, AES-128-GCM
	body = u16(u16(body, 1), 1) //
	body = append(body, 0)      // maximum_name_length
	body = append(body, byte(len(publicName)))
	body = append(body, publicName...)
	body = u16(body, 0) // no extensions
	config := u16(u16(nil, 0xfe0d), len(body))
	config = append(config, body...)
	list = append(u16(nil, len(config)), config...)
	return list, tls.EncryptedClientHelloKey{Config: config, PrivateKey: priv.Bytes(), SendAsRetry: true}
}

// hasExtension reports whether the ClientHello in rec (one record) carries
// the extension typ.
func hasExtension(rec []byte, typ uint16) bool {
	b := rec[5:]
	if len(b) < 4 || b[0] != 1 {
		return false
	}
	b = b[4:]
	if len(b) < 35 {
		return false
	}
	b = b[34:] // version, random
	skip := func(n int) bool {
		if len(b) < n {
			return false
		}
		b = b[n:]
		return true
	}
	if !skip(1 + int(b[0])) { // session id
		return false
	}
	if len(b) < 2 || !skip(2+int(binary.BigEndian.Uint16(b))) { // cipher suites
		return false
	}
	if len(b) < 1 || !skip(1+int(b[0])) { // compression
		return false
	}
	if len(b) < 2 {
		return false
	}
	b = b[2:]
	for len(b) >= 4 {
		t, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if t == typ {
			return true
		}
		if !skip(4 + n) {
			return false
		}
	}
	return false
}

// dialConnect sends a CONNECT for target with extra header lines (each
// ending in \r\n) and returns the connection and the proxy's answer.
func dialConnect(t *testing.T, e *env, target, extra string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n"+extra+"\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	return c, br, resp
}

// waitClosed reads c until the proxy closes it, failing the test if that
// does not happen within a generous ceiling.
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: the connection is still open", what)
		}
		return
	}
}

// waitEventT is env.waitEvent for a subtest: a failure stops t, not the
// test that started the proxy.
func waitEventT(t *testing.T, e *env, want map[string]any) event {
	t.Helper()
	return waitEventWhere(t, e, fmt.Sprintf("matching %v", want), func(ev event) bool { return matches(ev, want) })
}

// waitEventWhere waits for a decision event for which ok holds.
func waitEventWhere(t *testing.T, e *env, what string, ok func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.events() {
			if ok(ev) {
				return ev
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no event %s in log:\n%s", what, e.log.String())
	return nil
}

// coalescedConn is a client connection to the proxy whose first write
// carries the CONNECT request and the client's first bytes together (as
// some clients send them), and whose reads start after the proxy's answer
// to the CONNECT.
type coalescedConn struct {
	net.Conn
	connect []byte
	br      *bufio.Reader
	wrote   bool
	read    bool
}

func newCoalescedConn(t *testing.T, e *env, target string) *coalescedConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &coalescedConn{Conn: c, br: bufio.NewReader(c),
		connect: []byte("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n")}
}

func (c *coalescedConn) Write(p []byte) (int, error) {
	if c.wrote {
		return c.Conn.Write(p)
	}
	c.wrote = true
	if _, err := c.Conn.Write(append(c.connect, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *coalescedConn) Read(p []byte) (int, error) {
	if !c.read {
		c.read = true
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, errors.New("CONNECT answered " + resp.Status)
		}
	}
	return c.br.Read(p)
}

// h2conn is an HTTP/2 client driven frame by frame, for requests no
// well-behaved client library would send.
type h2conn struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func newH2Conn(t *testing.T, c net.Conn) *h2conn {
	t.Helper()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &h2conn{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// headers sends one HEADERS frame with fields in order, pairs of name and
// value, without validating them.
func (h *h2conn) headers(stream uint32, endStream bool, fields ...string) {
	h.t.Helper()
	h.buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: h.buf.Bytes(),
		EndHeaders: true, EndStream: endStream})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *h2conn) data(stream uint32, endStream bool, p []byte) {
	h.t.Helper()
	if err := h.fr.WriteData(stream, endStream, p); err != nil {
		h.t.Fatal(err)
	}
}

// response reads frames until the server answers stream: the :status it
// sent, or "RST_STREAM", "GOAWAY" or "closed".
func (h *h2conn) response(stream uint32) string {
	h.t.Helper()
	h.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				h.t.Fatalf("no answer on stream %d", stream)
			}
			return "closed"
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				h.fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == stream {
				return f.PseudoValue("status")
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == stream {
				return "RST_STREAM"
			}
		case *http2.GoAwayFrame:
			return "GOAWAY"
		}
	}
}

// requestLog records the requests an upstream was asked, including any
// request sent inside a CONNECT it was asked to open.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(s string) {
	l.mu.Lock()
	l.reqs = append(l.reqs, s)
	l.mu.Unlock()
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

func (l *requestLog) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.add(r.Method + " " + r.URL.Path)
		if r.Method == http.MethodConnect {
			if hj, ok := w.(http.Hijacker); ok {
				c, brw, err := hj.Hijack()
				if err != nil {
					return
				}
				defer c.Close()
				io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if in, err := http.ReadRequest(brw.Reader); err == nil {
					l.add("tunneled " + in.Method + " " + in.URL.Path)
				}
				return
			}
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			if len(b) > 0 {
				l.add("tunneled " + strings.SplitN(string(b), "\r\n", 2)[0])
			}
			return
		}
		echoHandler(w, r)
	})
}

// mitmPolicy intercepts example.com and plain.test, both on loopback;
// other.test resolves there too but is not allowed.
func mitmPolicy(extra string) string {
	return `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [example.com, plain.test]
resolve:
  example.com: [127.0.0.1]
  plain.test: [127.0.0.1]
  other.test: [127.0.0.1]
intercept: [example.com, plain.test]
` + extra
}

// newMitmEnv starts a proxy with a CA (so it can intercept) under policy,
// trusting a fresh upstream PKI whose leaves the test issues.
func newMitmEnv(t *testing.T, policy string, tweak func(*proxy.Config)) (*env, *testCA) {
	t.Helper()
	upCA := newTestCA(t)
	return startProxyOpts(t, policy, nil, &tlsOpts{roots: upCA.pool()}, tweak), upCA
}

// mitmTLS opens an intercepted tunnel to target and completes TLS with
// agentg over it, offering only alpn.
func mitmTLS(t *testing.T, e *env, target, alpn string) (*tls.Conn, net.Conn) {
	t.Helper()
	raw := connectTunnel(t, e, target)
	host, _, _ := net.SplitHostPort(target)
	tc := tls.Client(raw, &tls.Config{ServerName: host, RootCAs: e.caPool(), NextProtos: []string{alpn}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS with agentg for %s: %v", target, err)
	}
	return tc, raw
}

// roundTrip writes one raw HTTP/1 request on c and reads the answer.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write %q: %v", raw, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response to %q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// rewritePolicy replaces the env's policy file and reloads it the way
// SIGHUP does; the proxy learns of it from the policy alone.
func (e *env) rewritePolicy(policy string) {
	e.t.Helper()
	if err := os.WriteFile(e.policy, []byte(policy), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := e.live.Reload(); err != nil {
		e.t.Fatalf("reload: %v", err)
	}
}

// fixedResolver answers names from a table: it stands in for the system's
// resolver (/etc/hosts) where the policy has no resolve entry.
type fixedResolver map[string][]netip.Addr

func (r fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := r[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
