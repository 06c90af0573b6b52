package dissect

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"testing/iotest"
	"time"
)

// noReadPast fails the test if a reader reads beyond the bytes it was
// meant to stop at.
type noReadPast struct{ tb testing.TB }

func (r noReadPast) Read(p []byte) (int, error) {
	r.tb.Error("read past the end of the hello")
	return 0, io.EOF
}

func TestReadClientHelloRealClients(t *testing.T) {
	for name, cfg := range helloConfigs() {
		t.Run(name, func(t *testing.T) {
			flight := firstFlight(t, cfg)
			gos, err := goServerSees(flight)
			if err != nil || gos.ServerName != cfg.ServerName {
				t.Fatalf("crypto/tls server reads %+v, %v; client asked for %q", gos, err, cfg.ServerName)
			}
			msgLen := len(handshakeBytes(t, flight))

			inputs := map[string]func() (io.Reader, []byte){
				"whole": func() (io.Reader, []byte) {
					return io.MultiReader(bytes.NewReader(flight), noReadPast{t}), flight
				},
				"one-byte-reads": func() (io.Reader, []byte) {
					return iotest.OneByteReader(io.MultiReader(bytes.NewReader(flight), noReadPast{t})), flight
				},
				"data-with-eof": func() (io.Reader, []byte) {
					return iotest.DataErrReader(bytes.NewReader(flight)), flight
				},
			}
			for _, cuts := range [][]int{{1}, {3}, {4}, {5}, {msgLen / 2}, {msgLen - 1}, {1, 2, 3, 4}, {msgLen / 4, msgLen / 2, 3 * msgLen / 4}} {
				in := refragment(t, flight, cuts...)
				inputs[fmt.Sprintf("records-cut-at-%v", cuts)] = func() (io.Reader, []byte) { return bytes.NewReader(in), in }
			}
			var every []int
			for i := 1; i < msgLen; i++ {
				every = append(every, i)
			}
			perByte := refragment(t, flight, every...)
			inputs["one-record-per-byte"] = func() (io.Reader, []byte) { return bytes.NewReader(perByte), perByte }

			for iname, mk := range inputs {
				r, in := mk()
				if gos, err := goServerSees(in); err != nil || gos.ServerName != cfg.ServerName {
					t.Fatalf("%s: crypto/tls server does not take this input: %v", iname, err)
				}
				h, got, err := ReadClientHello(r, 0)
				checkHello(t, iname, cfg, h, err)
				if !bytes.Equal(got, in) {
					t.Errorf("%s: returned %d bytes, want the %d of the input", iname, len(got), len(in))
				}
			}

			// Split into two reads at every offset: a short read anywhere,
			// headers included, must not change what is read.
			for k := 1; k < len(flight); k++ {
				r := io.MultiReader(bytes.NewReader(flight[:k]), bytes.NewReader(flight[k:]), noReadPast{t})
				h, got, err := ReadClientHello(r, 0)
				checkHello(t, fmt.Sprintf("split at %d", k), cfg, h, err)
				if !bytes.Equal(got, flight) {
					t.Fatalf("split at %d: returned bytes differ from the input", k)
				}
			}
		})
	}
}

func checkHello(t *testing.T, input string, cfg *tls.Config, h Hello, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", input, err)
	}
	if h.ServerName != cfg.ServerName {
		t.Errorf("%s: ServerName %q, want %q", input, h.ServerName, cfg.ServerName)
	}
	if !slices.Equal(h.ALPN, cfg.NextProtos) {
		t.Errorf("%s: ALPN %q, want %q", input, h.ALPN, cfg.NextProtos)
	}
	if h.ECH || h.ECHOuterExtensions {
		t.Errorf("%s: ECH reported for a client without ECH", input)
	}
	if len(h.Extensions) == 0 || len(h.CipherSuites) == 0 {
		t.Errorf("%s: no extensions or cipher suites: %+v", input, h)
	}
	switch {
	case cfg.MaxVersion == tls.VersionTLS12 && slices.Contains(h.Versions, tls.VersionTLS13):
		t.Errorf("%s: TLS 1.2-only client offers %x", input, h.Versions)
	case cfg.MinVersion == tls.VersionTLS13 && slices.Contains(h.Versions, tls.VersionTLS12):
		t.Errorf("%s: TLS 1.3-only client offers %x", input, h.Versions)
	case cfg.MaxVersion == 0 && !slices.Contains(h.Versions, tls.VersionTLS13):
		t.Errorf("%s: default client offers %x", input, h.Versions)
	}
}

func TestReadClientHelloRefuses(t *testing.T) {
	cfg := &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true}
	flight := firstFlight(t, cfg)
	msg := handshakeBytes(t, flight)
	half := len(msg) / 2
	frag1, frag2 := frame(recordTypeHandshake, msg[:half]), frame(recordTypeHandshake, msg[half:])
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	withSNI := func(entries ...ext) []byte {
		return rebuildHello(t, flight, func(es []ext) []ext {
			for i := range es {
				if es[i].typ == extensionServerName {
					es[i].data = serverNameExt(entries...)
				}
			}
			return es
		})
	}
	badSessionID := bytes.Clone(msg)
	badSessionID[4+2+32] = 0xff // session id "longer" than the message

	tests := []struct {
		name  string
		in    []byte
		limit int
		rule  error
		// goReads: crypto/tls's server, over the same stream, reads a
		// ClientHello with SNI api.example.com: the refusal is what stops
		// it from reaching one.
		goReads bool
	}{
		{name: "warning alert first", in: cat(frame(recordTypeAlert, []byte{1, 112}), flight), rule: ErrNotHandshake, goReads: true},
		{name: "fatal alert first", in: cat(frame(recordTypeAlert, []byte{2, 40}), flight), rule: ErrNotHandshake},
		{name: "change_cipher_spec first", in: cat(frame(recordTypeChangeCipherSpec, []byte{1}), flight), rule: ErrNotHandshake},
		{name: "application_data first", in: cat(frame(recordTypeApplicationData, []byte("hello")), flight), rule: ErrNotHandshake},
		{name: "heartbeat first", in: cat(frame(recordTypeHeartbeat, []byte{1, 0, 0}), flight), rule: ErrNotHandshake},
		{name: "alert between fragments", in: cat(frag1, frame(recordTypeAlert, []byte{1, 112}), frag2), rule: ErrInterleaved, goReads: true},
		{name: "change_cipher_spec between fragments", in: cat(frag1, frame(recordTypeChangeCipherSpec, []byte{1}), frag2), rule: ErrInterleaved},
		{name: "second message in the hello's record", in: frame(recordTypeHandshake, cat(msg, []byte{20, 0, 0, 0})), rule: ErrTrailingData, goReads: true},
		{name: "second hello in the hello's record", in: frame(recordTypeHandshake, cat(msg, msg)), rule: ErrTrailingData, goReads: true},
		{name: "one byte after the hello", in: frame(recordTypeHandshake, cat(msg, []byte{1})), rule: ErrTrailingData, goReads: true},
		{name: "zero-length record first", in: cat(frame(recordTypeHandshake, nil), flight), rule: ErrEmptyRecord},
		{name: "zero-length record between fragments", in: cat(frag1, frame(recordTypeHandshake, nil), frag2), rule: ErrEmptyRecord},
		{name: "zero-length alert first", in: cat(frame(recordTypeAlert, nil), flight), rule: ErrEmptyRecord},
		{name: "oversized record", in: frame(recordTypeHandshake, cat(msg, make([]byte, maxPlaintext+1-len(msg)))), rule: ErrRecordTooLong},
		{name: "record length 0xffff", in: cat([]byte{22, 3, 1, 0xff, 0xff}, make([]byte, 100)), rule: ErrRecordTooLong},
		{name: "over the limit", in: flight, limit: len(flight) - 1, rule: ErrTooLarge, goReads: true},
		{name: "over the limit in fragments", in: refragment(t, flight, 100, 200, 300), limit: len(flight) + 10, rule: ErrTooLarge, goReads: true},
		{name: "announced length over the limit", in: frame(recordTypeHandshake, []byte{1, 0x01, 0, 0, 3, 3}), limit: 64 << 10, rule: ErrTooLarge},
		{name: "record version 0.1", in: cat([]byte{22, 0, 1}, flight[3:]), rule: ErrRecordVersion, goReads: true},
		{name: "record version 2.0", in: cat([]byte{22, 2, 0}, flight[3:]), rule: ErrRecordVersion, goReads: true},
		{name: "fragment with record version 0.1", in: cat(frag1, []byte{22, 0, 1}, frag2[3:]), rule: ErrRecordVersion, goReads: true},
		{name: "SSLv2-style hello", in: []byte("\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10\x00\x00\x2f\x00\x00\x35\x00\x00\x0a\x07\x00\xc0\x00\x00\x05\x00\x00\x04\x01\x00\x80" + "0123456789abcdef"), rule: ErrSSLv2},
		{name: "ServerHello first", in: frame(recordTypeHandshake, cat([]byte{2}, msg[1:])), rule: ErrUnexpectedMessage},
		{name: "HTTP", in: []byte("GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n"), rule: ErrNotTLS},
		{name: "binary", in: []byte{0, 1, 2, 3, 4, 5, 6, 7}, rule: ErrNotTLS},
		{name: "duplicate extension", in: rebuildHello(t, flight, func(es []ext) []ext { return append(es, es[0]) }), rule: ErrMalformed},
		{name: "session id overruns the hello", in: frame(recordTypeHandshake, badSessionID), rule: ErrMalformed},
		{name: "hello cut short inside its length", in: frame(recordTypeHandshake, cat([]byte{1, 0, 0, 4}, []byte{3, 3, 0, 0})), rule: ErrMalformed},
		{name: "server_name of another name type only", in: withSNI(ext{1, []byte("evil.example")}), rule: ErrMalformed},
		{name: "server_name host_name then another type", in: withSNI(ext{0, []byte("api.example.com")}, ext{1, []byte("evil.example")}), rule: ErrMalformed, goReads: true},
		{name: "server_name another type then host_name", in: withSNI(ext{1, []byte("evil.example")}, ext{0, []byte("api.example.com")}), rule: ErrMalformed, goReads: true},
		{name: "server_name with two host_names", in: withSNI(ext{0, []byte("api.example.com")}, ext{0, []byte("evil.example")}), rule: ErrMalformed},
		{name: "empty stream", in: nil, rule: ErrTruncated},
		{name: "cut inside the first header", in: flight[:3], rule: ErrTruncated},
		{name: "cut after the first header", in: flight[:5], rule: ErrTruncated},
		{name: "cut inside the body", in: flight[:len(flight)-1], rule: ErrTruncated},
		{name: "cut between fragments", in: frag1, rule: ErrTruncated},
		{name: "cut inside the second header", in: cat(frag1, frag2[:2]), rule: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got, err := ReadClientHello(bytes.NewReader(tt.in), tt.limit)
			var g *GateError
			if !errors.As(err, &g) || !errors.Is(err, tt.rule) {
				t.Fatalf("got %+v, %v; want a *GateError for %v", h, err, tt.rule)
			}
			if !bytes.HasPrefix(tt.in, got) {
				t.Errorf("returned bytes are not a prefix of the input")
			}
			if g.Offset != len(got) {
				t.Errorf("Offset %d, but %d bytes returned", g.Offset, len(got))
			}
			if tt.limit > 0 && len(got) > tt.limit {
				t.Errorf("read %d bytes past the limit of %d", len(got), tt.limit)
			}
			if tt.rule == ErrRecordTooLong && len(got) != 5 {
				t.Errorf("read %d bytes of an oversized record; want the header only", len(got))
			}
			info, gerr := goServerSees(tt.in)
			if reads := gerr == nil && info.ServerName == "api.example.com"; reads != tt.goReads {
				t.Errorf("crypto/tls server reads a hello for api.example.com: %v, want %v (%v)", reads, tt.goReads, gerr)
			}
		})
	}
}

// A peer that stops mid-record gets an error, not a hang; a read error
// that is not the stream ending is passed on, not dressed as a refusal.
func TestReadClientHelloOverPipe(t *testing.T) {
	flight := firstFlight(t, &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true})

	c, s := net.Pipe()
	go func() {
		c.Write(flight[:len(flight)/2])
		c.Close()
	}()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, got, err := ReadClientHello(s, 0)
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("peer closed mid-record: %v", err)
	}
	if !bytes.Equal(got, flight[:len(flight)/2]) {
		t.Errorf("returned %d bytes, the peer sent %d", len(got), len(flight)/2)
	}
	s.Close()

	c, s = net.Pipe()
	defer c.Close()
	defer s.Close()
	go c.Write(flight[:7])
	s.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, got, err = ReadClientHello(s, 0)
	var g *GateError
	if !errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &g) {
		t.Errorf("peer stalled: %v, want a deadline error that is no *GateError", err)
	}
	if !bytes.Equal(got, flight[:7]) {
		t.Errorf("returned %d bytes, the peer sent 7", len(got))
	}
}

func TestReadSecondClientHelloRefuses(t *testing.T) {
	flight := firstFlight(t, &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true})
	ccs := frame(recordTypeChangeCipherSpec, []byte{1})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		in   []byte
		rule error
	}{
		{"two change_cipher_spec records", cat(ccs, ccs, flight), ErrNotHandshake},
		{"change_cipher_spec body 2", cat(frame(recordTypeChangeCipherSpec, []byte{2}), flight), ErrBadCCS},
		{"change_cipher_spec of two bytes", cat(frame(recordTypeChangeCipherSpec, []byte{1, 1}), flight), ErrBadCCS},
		{"alert first", cat(frame(recordTypeAlert, []byte{1, 112}), flight), ErrNotHandshake},
		{"alert after change_cipher_spec", cat(ccs, frame(recordTypeAlert, []byte{1, 112}), flight), ErrNotHandshake},
		{"change_cipher_spec then nothing", ccs, ErrTruncated},
		{"second message after the hello", cat(ccs, frame(recordTypeHandshake, cat(handshakeBytes(t, flight), []byte{20, 0, 0, 0}))), ErrTrailingData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := ReadSecondClientHello(bytes.NewReader(tt.in), 0)
			if !errors.Is(err, tt.rule) {
				t.Fatalf("got %v, want %v", err, tt.rule)
			}
			if !bytes.HasPrefix(tt.in, got) {
				t.Errorf("returned bytes are not a prefix of the input")
			}
		})
	}
	// The first flight itself, with or without the one permitted
	// change_cipher_spec in front, reads as a second hello too.
	for _, in := range [][]byte{flight, cat(ccs, flight)} {
		h, got, err := ReadSecondClientHello(io.MultiReader(bytes.NewReader(in), noReadPast{t}), 0)
		if err != nil || h.ServerName != "api.example.com" || !bytes.Equal(got, in) {
			t.Errorf("%d bytes: %+v, %d bytes returned, %v", len(in), h, len(got), err)
		}
	}
}
