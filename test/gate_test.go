package test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/proxy"
)

// The TLS gate of a plain (not intercepted) tunnel: the client's first
// bytes are judged before any reaches the upstream, however they are cut
// into writes and records. The upstreams here record every byte they
// receive, so "nothing passed" is checked at the far end, not inferred from
// the proxy's own counters.

const gatePolicyHosts = "hosts:\n  - allow: allowed.test\n"

// Issue 11: a ClientHello naming another host than the CONNECT must be
// refused whether it comes in the CONNECT's own write, starts there with
// one byte, or arrives one byte per write; until now only a hello read
// after the CONNECT answer was checked.
func TestGateSNIMismatchAcrossWrites(t *testing.T) {
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	up := newRawUpstream(t, nil)
	target := "allowed.test:" + up.port
	connect := []byte("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n")
	hello := helloFor(t, "denied.test")

	tests := []struct {
		name   string
		writes [][]byte
	}{
		{"hello in the CONNECT's write", [][]byte{append(bytes.Clone(connect), hello...)}},
		{"first byte in the CONNECT's write", [][]byte{append(bytes.Clone(connect), hello[0]), hello[1:]}},
		{"one byte per write", append([][]byte{connect}, oneByteWrites(hello)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, w := range tt.writes {
				if _, err := c.Write(w); err != nil {
					break // the proxy may close as soon as it has seen enough
				}
				time.Sleep(time.Millisecond) // separate segments, not a timing assertion
			}
			waitClosed(t, c, "tunnel carrying TLS for denied.test")
			waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String(),
				"decision": "deny", "rule": "builtin:sni-mismatch"})
			up.settled(t)
			if got := up.bytes(); len(got) != 0 {
				t.Fatalf("the upstream received %d bytes of a refused tunnel: %q", len(got), got)
			}
		})
	}
}

func oneByteWrites(p []byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i : i+1]
	}
	return out
}

// Issue 11: a tunnel whose first TLS record is not a handshake (an alert,
// a ChangeCipherSpec, application data) is not a TLS client starting
// cleanly; letting it through put bytes before the ClientHello that the
// gate never read.
func TestGateRecordsBeforeHello(t *testing.T) {
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	hello := helloFor(t, "allowed.test")
	tests := []struct {
		name   string
		prefix []byte
	}{
		{"warning alert", []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00}},
		{"change cipher spec", []byte{0x14, 0x03, 0x03, 0x00, 0x01, 0x01}},
		{"application data", []byte{0x17, 0x03, 0x03, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newRawUpstream(t, nil)
			c := connectTunnel(t, e, "allowed.test:"+up.port)
			c.Write(append(bytes.Clone(tt.prefix), hello...))
			waitClosed(t, c, tt.name+" before the hello")
			waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String(),
				"decision": "deny", "rule": "builtin:tls-gate"})
			up.settled(t)
			if got := up.bytes(); len(got) != 0 {
				t.Fatalf("the upstream received %d bytes: %q", len(got), got)
			}
		})
	}
}

// splittingConn sends its first write (one ClientHello record) as two TLS
// records, cut into several TCP writes.
type splittingConn struct {
	net.Conn
	t    *testing.T
	done bool
}

func (c *splittingConn) Write(p []byte) (int, error) {
	if c.done {
		return c.Conn.Write(p)
	}
	c.done = true
	if len(p) < 64 || p[0] != 0x16 || int(p[3])<<8|int(p[4]) != len(p)-5 {
		c.t.Errorf("first write is not exactly one handshake record (%d bytes)", len(p))
		return c.Conn.Write(p)
	}
	two := splitRecord(p, 40) // the server name lies in the second record
	for _, cut := range [][2]int{{0, 3}, {3, 50}, {50, len(two) - 7}, {len(two) - 7, len(two)}} {
		if _, err := c.Conn.Write(two[cut[0]:cut[1]]); err != nil {
			return 0, err
		}
		time.Sleep(5 * time.Millisecond) // separate segments, not a timing assertion
	}
	return len(p), nil
}

// Issue 11: the gate must read a whole ClientHello however it is split
// (records and TCP writes), and a legitimate split hello still passes.
func TestGateSplitHelloPasses(t *testing.T) {
	ca := newTestCA(t)
	up := tlsUpstream(t, ca.leaf(t, "allowed.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	target := "allowed.test:" + up.port
	raw := connectTunnel(t, e, target)
	tc := tls.Client(&splittingConn{Conn: raw, t: t}, &tls.Config{ServerName: "allowed.test", RootCAs: ca.pool(),
		NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake with a split ClientHello: %v", err)
	}
	resp, body := roundTrip(t, tc, bufio.NewReader(tc), "GET /split HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /split") {
		t.Fatalf("through the tunnel: %d %q", resp.StatusCode, body)
	}
}

// Issue 11: Encrypted Client Hello hides the real server name from the
// gate (the outer SNI is only the public name), so it is refused unless a
// passthrough entry allows it for that host.
func TestGateECH(t *testing.T) {
	list, key := echKeys(t, "allowed.test")
	echConf := func(roots *tls.Config) *tls.Config {
		c := &tls.Config{ServerName: "allowed.test", EncryptedClientHelloConfigList: list, MinVersion: tls.VersionTLS13}
		if roots != nil {
			c.RootCAs = roots.RootCAs
		}
		return c
	}

	t.Run("refused", func(t *testing.T) {
		e := startProxy(t, basePolicy(gatePolicyHosts), nil)
		up := newRawUpstream(t, nil)
		hello := captureHello(t, echConf(nil))
		if !hasExtension(hello, 0xfe0d) {
			t.Fatal("the captured hello carries no encrypted_client_hello extension")
		}
		c := connectTunnel(t, e, "allowed.test:"+up.port)
		c.Write(hello)
		waitClosed(t, c, "ECH tunnel")
		waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String(),
			"decision": "deny", "rule": "builtin:ech"})
		up.settled(t)
		if got := up.bytes(); len(got) != 0 {
			t.Fatalf("the upstream received %d bytes of an ECH hello", len(got))
		}
	})

	t.Run("allowed by passthrough", func(t *testing.T) {
		ca := newTestCA(t)
		up, _ := recordingTLSUpstream(t, &tls.Config{
			Certificates:             []tls.Certificate{ca.leaf(t, "allowed.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))},
			EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{key},
			MinVersion:               tls.VersionTLS13,
		}, nil)
		e := startProxy(t, basePolicy(gatePolicyHosts+"passthrough:\n  - host: allowed.test\n    ech: allow\n"), nil)
		target := "allowed.test:" + up.port
		tc := tls.Client(connectTunnel(t, e, target), echConf(&tls.Config{RootCAs: ca.pool()}))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("ECH allowed by passthrough: %v", err)
		}
		if !tc.ConnectionState().ECHAccepted {
			t.Fatal("the upstream did not accept ECH: the test proves nothing")
		}
		resp, _ := roundTrip(t, tc, bufio.NewReader(tc), "GET /ech HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("through the ECH tunnel: %d", resp.StatusCode)
		}
	})
}

// hrrRandom is the ServerHello.random that marks a HelloRetryRequest
// (RFC 8446, 4.1.3).
var hrrRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// Issue 11: after a HelloRetryRequest the client sends a second
// ClientHello; checking only the first let the second name any host.
func TestGateHelloRetryRequest(t *testing.T) {
	ca := newTestCA(t)
	up, rec := recordingTLSUpstream(t, &tls.Config{
		Certificates:     []tls.Certificate{ca.leaf(t, "allowed.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))},
		CurvePreferences: []tls.CurveID{tls.CurveP256},
		MinVersion:       tls.VersionTLS13,
	}, nil)
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	target := "allowed.test:" + up.port
	// crypto/tls sends a key share for the first curve in its fixed order
	// (X25519 before P-256), whatever order CurvePreferences lists: a
	// server that takes only P-256 must ask the client to retry.
	clientCurves := []tls.CurveID{tls.X25519, tls.CurveP256}

	t.Run("second hello for another host", func(t *testing.T) {
		first := captureHello(t, &tls.Config{ServerName: "allowed.test", CurvePreferences: clientCurves, MinVersion: tls.VersionTLS13})
		second := helloFor(t, "denied.test")
		second[1], second[2] = 3, 3 // records after a HelloRetryRequest say TLS 1.2, as a real client's do
		c := connectTunnel(t, e, target)
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 0x16 {
			t.Fatalf("no ServerHello from the upstream: %x %v", hdr, err)
		}
		sh := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(c, sh); err != nil || len(sh) < 38 || !bytes.Equal(sh[6:38], hrrRandom) {
			t.Fatalf("the upstream did not answer with a HelloRetryRequest: %v", err)
		}
		c.Write(second)
		waitClosed(t, c, "tunnel after a second hello for denied.test")
		rec.settled(t)
		if got := rec.bytes(); !bytes.Equal(got, first) {
			t.Errorf("the upstream received %d bytes, want exactly the first hello (%d bytes)", len(got), len(first))
		}
		waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String(),
			"decision": "deny", "rule": "builtin:sni-mismatch"})
	})

	t.Run("legitimate retry", func(t *testing.T) {
		tc := tls.Client(connectTunnel(t, e, target), &tls.Config{ServerName: "allowed.test", RootCAs: ca.pool(),
			CurvePreferences: clientCurves, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake with a HelloRetryRequest: %v", err)
		}
		if !tc.ConnectionState().HelloRetryRequest {
			t.Fatal("the handshake had no HelloRetryRequest: the test proves nothing")
		}
		resp, _ := roundTrip(t, tc, bufio.NewReader(tc), "GET /hrr HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("through the tunnel: %d", resp.StatusCode)
		}
	})
}

// Issue 11: a client that never sends its first bytes held a tunnel (and
// an upstream connection) open forever.
func TestGateFirstBytesTimeout(t *testing.T) {
	e := startProxyOpts(t, basePolicy(gatePolicyHosts), nil, nil, func(c *proxy.Config) {
		c.FirstBytesTimeout = 300 * time.Millisecond
	})
	up := newRawUpstream(t, nil)
	c := connectTunnel(t, e, "allowed.test:"+up.port)
	waitClosed(t, c, "silent tunnel")
	ev := e.waitEvent(map[string]any{"kind": "connect", "client": c.LocalAddr().String(), "decision": "deny"})
	t.Logf("silent tunnel: rule %q reason %q", ev.str("rule"), ev.str("reason"))
	up.settled(t)
	if got := up.bytes(); len(got) != 0 {
		t.Fatalf("the upstream received %q", got)
	}
}

// Issue 11: protocols that are neither TLS nor HTTP keep passing opaque
// (the gate must not become a TLS-only filter).
func TestGateOpaqueProtocolPasses(t *testing.T) {
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	up := newRawUpstream(t, bannerThenEcho)
	c := connectTunnel(t, e, "allowed.test:"+up.port)
	io.WriteString(c, "SSH-2.0-x\r\n")
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "SSH-2.0-upstream\r\n" {
		t.Fatalf("banner through the tunnel: %q %v", line, err)
	}
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the tunnel: %q %v", buf, err)
	}
	c.Close()
	e.waitEvent(map[string]any{"kind": "connect", "client": c.LocalAddr().String(), "decision": "allow"})
	up.settled(t)
	if got := string(up.bytes()); got != "SSH-2.0-x\r\nping" {
		t.Fatalf("the upstream received %q", got)
	}
}

// Issue 11 (found in review of the fix): an upstream whose answer to the
// first ClientHello is not a ServerHello the gate can follow (here an
// application-data record) must not open the tunnel for whatever the client
// sends next: before, the gate took "no ServerHello read" for "no retry"
// and relayed a second hello for another host unchecked.
func TestGateUnreadableServerAnswer(t *testing.T) {
	first := helloFor(t, "allowed.test")
	up := newRawUpstream(t, func(c net.Conn) {
		buf := make([]byte, len(first))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		c.Write([]byte{0x17, 0x03, 0x03, 0x00, 0x02, 0xde, 0xad})
		io.Copy(io.Discard, c)
	})
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	c := connectTunnel(t, e, "allowed.test:"+up.port)
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	second := helloFor(t, "denied.test")
	c.Write(second)
	waitClosed(t, c, "tunnel after an unreadable ServerHello")
	up.settled(t)
	if got := up.bytes(); !bytes.Equal(got, first) {
		t.Errorf("the upstream received %d bytes, want exactly the first hello (%d bytes)", len(got), len(first))
	}
	waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String(), "decision": "deny", "rule": "builtin:tls-gate"})
}
