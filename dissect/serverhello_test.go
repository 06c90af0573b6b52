package dissect

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"golang.org/x/crypto/cryptobyte"
)

func TestHelloRetryRandom(t *testing.T) {
	if helloRetryRandom != sha256.Sum256([]byte("HelloRetryRequest")) {
		t.Fatal("helloRetryRandom is not SHA-256(\"HelloRetryRequest\")")
	}
}

// A real server that takes only P-256 and a real client that also offers
// X25519, which it key-shares first (crypto/tls ignores the order of
// CurvePreferences and always ranks X25519 above P-256): the server's
// first flight is a HelloRetryRequest and the client answers with a
// change_cipher_spec record and a second ClientHello.
func TestHelloRetryRequest(t *testing.T) {
	cert, pool := testCert(t, "hrr.example")
	clientSent, serverSent := handshake(t,
		&tls.Config{Certificates: []tls.Certificate{cert}, CurvePreferences: []tls.CurveID{tls.CurveP256}},
		&tls.Config{ServerName: "hrr.example", RootCAs: pool, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})

	for name, r := range map[string]io.Reader{
		"whole":          bytes.NewReader(serverSent),
		"one-byte-reads": iotest.OneByteReader(bytes.NewReader(serverSent)),
	} {
		sh, got, err := ReadServerHello(r, 0)
		if err != nil || !sh.HelloRetry || sh.Version != tls.VersionTLS13 {
			t.Fatalf("%s: server's first flight reads as %+v, %v; want a TLS 1.3 HelloRetryRequest", name, sh, err)
		}
		checkWholeRecords(t, serverSent, got)
	}

	ch1, got1, err := ReadClientHello(bytes.NewReader(clientSent), 0)
	if err != nil || ch1.ServerName != "hrr.example" {
		t.Fatalf("first ClientHello: %+v, %v", ch1, err)
	}
	checkWholeRecords(t, clientSent, got1)
	rest := clientSent[len(got1):]
	if rest[0] != recordTypeChangeCipherSpec {
		t.Fatalf("Go's client sent record type %d after its first hello, not change_cipher_spec", rest[0])
	}
	// The first-hello reader takes no change_cipher_spec in front.
	if _, _, err := ReadClientHello(bytes.NewReader(rest), 0); !errors.Is(err, ErrNotHandshake) {
		t.Errorf("ReadClientHello after HelloRetryRequest: %v, want ErrNotHandshake", err)
	}

	ccsRecs, _ := records(rest)
	withoutCCS := rest[len(ccsRecs[0]):]
	for name, in := range map[string][]byte{"with change_cipher_spec": rest, "without change_cipher_spec": withoutCCS} {
		for rname, r := range map[string]io.Reader{
			"whole":          bytes.NewReader(in),
			"one-byte-reads": iotest.OneByteReader(bytes.NewReader(in)),
		} {
			ch2, got2, err := ReadSecondClientHello(r, 0)
			if err != nil || ch2.ServerName != "hrr.example" {
				t.Fatalf("%s, %s: second ClientHello: %+v, %v", name, rname, ch2, err)
			}
			checkWholeRecords(t, in, got2)
			if next := in[len(got2)]; next != recordTypeApplicationData {
				t.Errorf("%s, %s: next record is type %d; want the client's encrypted Finished", name, rname, next)
			}
		}
	}
}

func TestServerHelloWithoutRetry(t *testing.T) {
	cert, pool := testCert(t, "plain.example")
	for _, tt := range []struct {
		name    string
		maxVers uint16
		want    uint16
	}{
		{"TLS 1.3", 0, tls.VersionTLS13},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, serverSent := handshake(t,
				&tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tt.maxVers},
				&tls.Config{ServerName: "plain.example", RootCAs: pool})
			sh, got, err := ReadServerHello(bytes.NewReader(serverSent), 0)
			if err != nil || sh.HelloRetry || sh.Version != tt.want {
				t.Fatalf("got %+v, %v; want version %#x without retry", sh, err, tt.want)
			}
			checkWholeRecords(t, serverSent, got)
		})
	}
}

// checkWholeRecords asserts got is a prefix of stream made of whole
// records.
func checkWholeRecords(t *testing.T, stream, got []byte) {
	t.Helper()
	if !bytes.HasPrefix(stream, got) {
		t.Fatal("returned bytes are not a prefix of the stream")
	}
	if recs, rest := records(got); len(recs) == 0 || len(rest) != 0 {
		t.Fatalf("returned %d bytes that are not whole records", len(got))
	}
}

// scriptConn feeds a real tls.Server a fixed client flight and keeps
// what the server answers.
type scriptConn struct {
	flightConn
	in io.Reader
}

func (c *scriptConn) Read(p []byte) (int, error) { return c.in.Read(p) }

// serverAnswer is what a real crypto/tls server writes back to flight.
func serverAnswer(t testing.TB, cfg *tls.Config, flight []byte) []byte {
	t.Helper()
	c := &scriptConn{flightConn: flightConn{reading: make(chan struct{}), closed: make(chan struct{})}, in: bytes.NewReader(flight)}
	tls.Server(c, cfg).Handshake()
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.written.Bytes())
}

func TestReadServerHelloRefuses(t *testing.T) {
	cert, _ := testCert(t, "refuse.example")
	// A TLS 1.3-only server answers a TLS 1.2-only client with an alert.
	alert := serverAnswer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		firstFlight(t, &tls.Config{ServerName: "refuse.example", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}))
	if len(alert) == 0 || alert[0] != recordTypeAlert {
		t.Fatalf("server answered % x, not an alert", alert)
	}
	answer := serverAnswer(t, &tls.Config{Certificates: []tls.Certificate{cert}},
		firstFlight(t, &tls.Config{ServerName: "refuse.example", InsecureSkipVerify: true}))
	recs, _ := records(answer)
	sh := handshakeBytes(t, recs[0])
	if sh[0] != typeServerHello {
		t.Fatalf("server's first message is type %d", sh[0])
	}
	clientHello := firstFlight(t, &tls.Config{ServerName: "refuse.example", InsecureSkipVerify: true})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	reframe := func(body []byte) []byte {
		n := len(body)
		return frame(recordTypeHandshake, cat([]byte{typeServerHello, byte(n >> 16), byte(n >> 8), byte(n)}, body))
	}
	badSessionID := bytes.Clone(sh[4:])
	badSessionID[2+32] = 33
	dupExt := rebuildServerHello(t, sh, func(es []ext) []ext { return append(es, es[0]) })
	badVersions := rebuildServerHello(t, sh, func(es []ext) []ext {
		for i := range es {
			if es[i].typ == extensionSupportedVersions {
				es[i].data = []byte{3, 4, 0}
			}
		}
		return es
	})
	same := rebuildServerHello(t, sh, func(es []ext) []ext { return es })
	if !bytes.Equal(same, frame(recordTypeHandshake, sh)) {
		t.Fatal("rebuildServerHello does not round-trip")
	}

	tests := []struct {
		name string
		in   []byte
		rule error
	}{
		{"a real alert", alert, ErrAlert},
		{"change_cipher_spec first", cat(frame(recordTypeChangeCipherSpec, []byte{1}), answer), ErrNotHandshake},
		{"application_data first", cat(frame(recordTypeApplicationData, []byte("x")), answer), ErrNotHandshake},
		{"ClientHello instead", clientHello, ErrUnexpectedMessage},
		{"session id too long", reframe(badSessionID), ErrMalformed},
		{"cut inside the message", reframe(sh[4 : len(sh)-3]), ErrMalformed},
		{"duplicate extension", dupExt, ErrMalformed},
		{"supported_versions of three bytes", badVersions, ErrMalformed},
		{"garbage", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), ErrNotTLS},
		{"zero-length record", cat(frame(recordTypeHandshake, nil), answer), ErrEmptyRecord},
		{"oversized record", cat([]byte{22, 3, 3, 0x40, 0x01}, make([]byte, 1<<14+1)), ErrRecordTooLong},
		{"stream cut short", answer[:len(recs[0])-1], ErrTruncated},
		{"alert between fragments", cat(frame(recordTypeHandshake, sh[:10]), frame(recordTypeAlert, []byte{1, 112}), frame(recordTypeHandshake, sh[10:])), ErrInterleaved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := ReadServerHello(bytes.NewReader(tt.in), 0)
			if !errors.Is(err, tt.rule) {
				t.Fatalf("got %v, want %v", err, tt.rule)
			}
			if !bytes.HasPrefix(tt.in, got) {
				t.Error("returned bytes are not a prefix of the input")
			}
		})
	}
	if _, got, err := ReadServerHello(bytes.NewReader(alert), 0); !errors.Is(err, ErrAlert) || !bytes.Equal(got, alert) {
		t.Errorf("alert: %v, %d of %d bytes returned; want all of it, to relay", err, len(got), len(alert))
	}
}

// rebuildServerHello re-encodes the ServerHello message sh with edit
// applied to its extensions, in one record.
func rebuildServerHello(t *testing.T, sh []byte, edit func([]ext) []ext) []byte {
	t.Helper()
	s := cryptobyte.String(sh[4:])
	var head, tail []byte
	var sid, exts cryptobyte.String
	if !s.ReadBytes(&head, 34) || !s.ReadUint8LengthPrefixed(&sid) || !s.ReadBytes(&tail, 3) ||
		!s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		t.Fatal("real ServerHello does not parse")
	}
	var list []ext
	for !exts.Empty() {
		var e ext
		var data cryptobyte.String
		if !exts.ReadUint16(&e.typ) || !exts.ReadUint16LengthPrefixed(&data) {
			t.Fatal("real ServerHello extensions do not parse")
		}
		e.data = data
		list = append(list, e)
	}
	list = edit(list)
	var b cryptobyte.Builder
	b.AddUint8(typeServerHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddBytes(head)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sid) })
		b.AddBytes(tail)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range list {
				b.AddUint16(e.typ)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.data) })
			}
		})
	})
	return frame(recordTypeHandshake, b.BytesOrPanic())
}
