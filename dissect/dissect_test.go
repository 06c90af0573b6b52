package dissect

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// helloBytes captures what a real Go TLS client sends first.
func helloBytes(t *testing.T, serverName string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		c := tls.Client(client, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
		c.Handshake()
		client.Close()
	}()
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf bytes.Buffer
	tmp := make([]byte, 64<<10)
	for {
		n, err := server.Read(tmp)
		buf.Write(tmp[:n])
		if _, _, herr := readName(bytes.NewReader(buf.Bytes())); herr == nil || err != nil {
			return buf.Bytes()
		}
	}
}

func TestClientHello(t *testing.T) {
	for _, name := range []string{"api.example.com", ""} {
		raw := helloBytes(t, name)
		if raw[0] != RecordTypeHandshake {
			t.Fatalf("first byte %#x", raw[0])
		}
		trailing := []byte("after the hello")
		got, consumed, err := readName(io.MultiReader(bytes.NewReader(raw), bytes.NewReader(trailing)))
		if err != nil {
			t.Fatalf("ReadClientHello(%q): %v", name, err)
		}
		if got != name {
			t.Errorf("server name %q, want %q", got, name)
		}
		if !bytes.HasPrefix(append(raw, trailing...), consumed) || len(consumed) < len(raw) {
			t.Errorf("consumed %d bytes that are not a prefix of the stream (hello is %d)", len(consumed), len(raw))
		}
	}
}

func TestClientHelloRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "GET / HTTP/1.1\r\n\r\n", "\x16\x03\x01\x00\x05hello", "\x16\x03\x01\xff\xff" + strings.Repeat("A", 100)} {
		_, consumed, err := readName(strings.NewReader(in))
		if err == nil {
			t.Errorf("%q accepted as a ClientHello", in)
		}
		if !strings.HasPrefix(in, string(consumed)) {
			t.Errorf("%q: consumed %q is not what was read", in, consumed)
		}
	}
}

// readName is ReadClientHello reduced to the server name, as the older
// tests here ask.
func readName(r io.Reader) (string, []byte, error) {
	h, consumed, err := ReadClientHello(r, DefaultLimit)
	return h.ServerName, consumed, err
}
