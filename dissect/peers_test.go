package dissect

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// This file holds the peers the tests use: real crypto/tls clients and
// servers, and helpers that re-frame what they send the ways a TLS stack
// or an attacker may.

// flightConn is the conn a tls.Client writes its first flight to: writes
// are kept, and the first Read (the client waiting for the server) marks
// the flight complete.
type flightConn struct {
	mu      sync.Mutex
	written bytes.Buffer
	reading chan struct{}
	closed  chan struct{}
	onceR   sync.Once
	onceC   sync.Once
}

func (c *flightConn) Read(p []byte) (int, error) {
	c.onceR.Do(func() { close(c.reading) })
	<-c.closed
	return 0, io.EOF
}

func (c *flightConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written.Write(p)
}

func (c *flightConn) Close() error {
	c.onceC.Do(func() { close(c.closed) })
	return nil
}

func (c *flightConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *flightConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}
}
func (c *flightConn) SetDeadline(t time.Time) error      { return nil }
func (c *flightConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *flightConn) SetWriteDeadline(t time.Time) error { return nil }

// firstFlight returns the bytes a real Go TLS client sends before it
// waits for the server: its ClientHello records.
func firstFlight(tb testing.TB, cfg *tls.Config) []byte {
	tb.Helper()
	c := &flightConn{reading: make(chan struct{}), closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- tls.Client(c, cfg).Handshake() }()
	select {
	case <-c.reading:
	case err := <-done:
		tb.Fatalf("client gave up before waiting for the server: %v", err)
	case <-time.After(10 * time.Second):
		tb.Fatal("client sent nothing")
	}
	c.mu.Lock()
	out := bytes.Clone(c.written.Bytes())
	c.mu.Unlock()
	c.Close()
	<-done
	return out
}

// helloConfigs are the clients whose hellos every reader must take.
func helloConfigs() map[string]*tls.Config {
	return map[string]*tls.Config{
		"sni":       {ServerName: "api.example.com", InsecureSkipVerify: true},
		"no-sni":    {InsecureSkipVerify: true},
		"alpn":      {ServerName: "h2.example.com", NextProtos: []string{"h2", "http/1.1"}, InsecureSkipVerify: true},
		"tls12":     {ServerName: "old.example.com", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true},
		"tls13":     {ServerName: "new.example.com", MinVersion: tls.VersionTLS13, InsecureSkipVerify: true},
		"long-name": {ServerName: string(bytes.Repeat([]byte("a"), 63)) + ".example.com", InsecureSkipVerify: true},
	}
}

// records splits a stream into whole TLS records (headers included),
// and returns what is left over.
func records(b []byte) (recs [][]byte, rest []byte) {
	for len(b) >= 5 {
		n := 5 + (int(b[3])<<8 | int(b[4]))
		if len(b) < n {
			break
		}
		recs = append(recs, b[:n])
		b = b[n:]
	}
	return recs, b
}

// handshakeBytes joins the bodies of a flight's records: the handshake
// messages they carry.
func handshakeBytes(tb testing.TB, flight []byte) []byte {
	tb.Helper()
	recs, rest := records(flight)
	if len(rest) != 0 || len(recs) == 0 {
		tb.Fatalf("flight of %d bytes is not whole records", len(flight))
	}
	var msg []byte
	for _, r := range recs {
		if r[0] != recordTypeHandshake {
			tb.Fatalf("record type %d in a hello flight", r[0])
		}
		msg = append(msg, r[5:]...)
	}
	return msg
}

// frame frames body as one record of type typ, version 3.1 (what Go
// clients put on a first flight).
func frame(typ uint8, body []byte) []byte {
	return append([]byte{typ, 3, 1, byte(len(body) >> 8), byte(len(body))}, body...)
}

// refragment carries the handshake bytes of flight in handshake records
// cut at the given offsets, as a TLS stack may fragment a message.
func refragment(tb testing.TB, flight []byte, cuts ...int) []byte {
	tb.Helper()
	msg := handshakeBytes(tb, flight)
	var out []byte
	prev := 0
	for _, c := range append(cuts, len(msg)) {
		out = append(out, frame(recordTypeHandshake, msg[prev:c])...)
		prev = c
	}
	return out
}

// ext is one ClientHello extension.
type ext struct {
	typ  uint16
	data []byte
}

// rebuildHello re-encodes the single ClientHello in flight with edit
// applied to its extensions, in one record.
func rebuildHello(tb testing.TB, flight []byte, edit func([]ext) []ext) []byte {
	tb.Helper()
	msg := handshakeBytes(tb, flight)
	s := cryptobyte.String(msg[4:])
	var head []byte
	var sid, suites, comp, exts cryptobyte.String
	if !s.ReadBytes(&head, 34) || !s.ReadUint8LengthPrefixed(&sid) ||
		!s.ReadUint16LengthPrefixed(&suites) || !s.ReadUint8LengthPrefixed(&comp) ||
		!s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		tb.Fatal("real ClientHello does not parse")
	}
	var list []ext
	for !exts.Empty() {
		var e ext
		var data cryptobyte.String
		if !exts.ReadUint16(&e.typ) || !exts.ReadUint16LengthPrefixed(&data) {
			tb.Fatal("real ClientHello extensions do not parse")
		}
		e.data = data
		list = append(list, e)
	}
	list = edit(list)
	var b cryptobyte.Builder
	b.AddUint8(typeClientHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddBytes(head)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sid) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(suites) })
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(comp) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range list {
				b.AddUint16(e.typ)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.data) })
			}
		})
	})
	return frame(recordTypeHandshake, b.BytesOrPanic())
}

// serverNameExt encodes a server_name extension body with the given
// (name type, name) entries.
func serverNameExt(entries ...ext) []byte {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range entries {
			b.AddUint8(uint8(e.typ))
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.data) })
		}
	})
	return b.BytesOrPanic()
}

// goServerSees runs crypto/tls's server straight over a raw stream, with
// its own record layer, and reports the ClientHello it reads.
func goServerSees(stream []byte) (*tls.ClientHelloInfo, error) {
	var info *tls.ClientHelloInfo
	err := tls.Server(&readOnlyConn{r: bytes.NewReader(stream)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			info = h
			return nil, errCaptured
		},
	}).Handshake()
	if info == nil {
		return nil, err
	}
	return info, nil
}

// testCert is a self-signed ECDSA certificate for name, and a pool that
// trusts it.
func testCert(tb testing.TB, name string) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// recordingConn keeps what passes through a conn in each direction.
type recordingConn struct {
	net.Conn
	mu        sync.Mutex
	sent, got bytes.Buffer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.sent.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// handshake runs a real crypto/tls client against a real crypto/tls
// server over loopback TCP and returns the bytes each side sent, as
// captured on the client's socket.
func handshake(tb testing.TB, server, client *tls.Config) (clientSent, serverSent []byte) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, server)
		if err := tc.Handshake(); err != nil {
			srvErr <- err
			return
		}
		// One byte each way makes the client read what the server
		// sends after its Finished, so both flights are whole.
		_, err = tc.Write([]byte{'s'})
		if err == nil {
			_, err = io.ReadFull(tc, make([]byte, 1))
		}
		srvErr <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &recordingConn{Conn: raw}
	tc := tls.Client(rc, client)
	if err := tc.Handshake(); err != nil {
		tb.Fatalf("client handshake: %v", err)
	}
	if _, err := io.ReadFull(tc, make([]byte, 1)); err != nil {
		tb.Fatalf("client read: %v", err)
	}
	if _, err := tc.Write([]byte{'c'}); err != nil {
		tb.Fatalf("client write: %v", err)
	}
	if err := <-srvErr; err != nil {
		tb.Fatalf("server: %v", err)
	}
	tc.Close()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return bytes.Clone(rc.sent.Bytes()), bytes.Clone(rc.got.Bytes())
}
