package dissect

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"testing"
)

// clientSeeds are real first flights, and some re-framed the ways the
// readers must refuse or take.
func clientSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, cfg := range helloConfigs() {
		flight := firstFlight(f, cfg)
		msg := handshakeBytes(f, flight)
		seeds = append(seeds,
			flight,
			refragment(f, flight, 1, len(msg)/2),
			append(frame(recordTypeAlert, []byte{1, 112}), flight...),
			append(frame(recordTypeChangeCipherSpec, []byte{1}), flight...),
			frame(recordTypeHandshake, append(bytes.Clone(msg), 20, 0, 0, 0)),
		)
	}
	_, list, _ := echConfig(f, "public.example")
	seeds = append(seeds, firstFlight(f, &tls.Config{ServerName: "secret.example", EncryptedClientHelloConfigList: list, MinVersion: tls.VersionTLS13}))
	return append(seeds, []byte("GET / HTTP/1.1\r\n\r\n"), []byte("\x80\x2e\x01\x03\x01"))
}

func FuzzReadClientHello(f *testing.F) {
	for _, s := range clientSeeds(f) {
		f.Add(s, uint16(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		h, got, err := ReadClientHello(bytes.NewReader(data), int(limit))
		if !bytes.HasPrefix(data, got) {
			t.Fatal("returned bytes are not a prefix of the input")
		}
		if max := int(limit); (max > 0 && len(got) > max) || len(got) > DefaultLimit {
			t.Fatalf("read %d bytes, limit %d", len(got), limit)
		}
		var g *GateError
		if err != nil {
			// A bytes.Reader fails only by ending, so every error is a
			// refusal, and it says where it fired.
			if !errors.As(err, &g) || g.Offset != len(got) {
				t.Fatalf("error %v (offset %v) after %d bytes", err, g, len(got))
			}
			return
		}
		if recs, rest := records(got); len(rest) != 0 || len(recs) == 0 {
			t.Fatal("accepted bytes are not whole records")
		}
		if Sniff(data) != TLS {
			t.Fatalf("accepted a hello that sniffs as %v", Sniff(data))
		}
		// crypto/tls's server, reading the raw stream with its own record
		// layer, must see the hello we report.
		info, gerr := goServerSees(data)
		if gerr != nil {
			t.Fatalf("accepted a hello crypto/tls's server refuses: %v", gerr)
		}
		if info.ServerName != h.ServerName {
			t.Fatalf("reported SNI %q; crypto/tls's server reads %q", h.ServerName, info.ServerName)
		}
		h2, got2, err := ReadSecondClientHello(bytes.NewReader(data), int(limit))
		if err != nil || h2.ServerName != h.ServerName || !bytes.Equal(got2, got) {
			t.Fatalf("ReadSecondClientHello disagrees: %+v, %v", h2, err)
		}
	})
}

func FuzzReadServerHello(f *testing.F) {
	cert, pool := testCert(f, "fuzz.example")
	srv := func(c *tls.Config) *tls.Config { c.Certificates = []tls.Certificate{cert}; return c }
	cli := func(c *tls.Config) *tls.Config { c.ServerName = "fuzz.example"; c.RootCAs = pool; return c }
	_, tls13 := handshake(f, srv(&tls.Config{}), cli(&tls.Config{}))
	_, tls12 := handshake(f, srv(&tls.Config{MaxVersion: tls.VersionTLS12}), cli(&tls.Config{}))
	_, hrr := handshake(f, srv(&tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP256}}), cli(&tls.Config{}))
	alert := serverAnswer(f, srv(&tls.Config{MinVersion: tls.VersionTLS13}),
		firstFlight(f, &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}))
	for _, s := range [][]byte{tls13, tls12, hrr, alert} {
		f.Add(s, uint16(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		sh, got, err := ReadServerHello(bytes.NewReader(data), int(limit))
		if !bytes.HasPrefix(data, got) {
			t.Fatal("returned bytes are not a prefix of the input")
		}
		if max := int(limit); (max > 0 && len(got) > max) || len(got) > DefaultLimit {
			t.Fatalf("read %d bytes, limit %d", len(got), limit)
		}
		var g *GateError
		if err != nil {
			if !errors.As(err, &g) || g.Offset != len(got) {
				t.Fatalf("error %v after %d bytes", err, len(got))
			}
			return
		}
		recs, rest := records(got)
		if len(rest) != 0 || len(recs) == 0 {
			t.Fatal("accepted bytes are not whole records")
		}
		msg := handshakeBytes(t, got)
		if retry := [32]byte(msg[6:38]) == sha256.Sum256([]byte("HelloRetryRequest")); retry != sh.HelloRetry {
			t.Fatalf("HelloRetry %v for random % x", sh.HelloRetry, msg[6:38])
		}
	})
}

func FuzzSniff(f *testing.F) {
	for _, s := range clientSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{"GET / HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n", "\r\nGET", "PING\r\n", "SSH-2.0-x\r\n", "\x00\x00\x00\x08"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSniffStable(t, data)
		if _, _, err := ReadClientHello(bytes.NewReader(data), 0); err == nil && Sniff(data) != TLS {
			t.Fatalf("a hello ReadClientHello takes sniffs as %v", Sniff(data))
		}
	})
}
