package dissect

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestSniff(t *testing.T) {
	tests := []struct {
		in   string
		want Protocol
	}{
		{"", NeedMore},
		// TLS: any first byte that is a record type, whatever follows,
		// so a malformed record meets the strict reader.
		{"\x16", TLS},
		{"\x16\x03\x01\x02\x00", TLS},
		{"\x15\x03\x03\x00\x02\x01\x70", TLS},
		{"\x14", TLS},
		{"\x17\x03\x03", TLS},
		{"\x18", TLS},
		{"\x16\x00\x01", TLS},
		{"\x13", Unknown},
		{"\x19", Unknown},
		// SSLv2 framing of a ClientHello.
		{"\x80", NeedMore},
		{"\x80\x2e", NeedMore},
		{"\x80\x2e\x01\x03\x01", TLS},
		{"\x80\x2e\x02", Unknown},
		{"\xff\xff\xff", Unknown},
		// HTTP/1 request lines, and what lenient servers take for one.
		{"G", NeedMore},
		{"GET", NeedMore},
		{"GET ", HTTP1},
		{"GET / HTTP/1.1\r\n", HTTP1},
		{"POST /x HTTP/1.1\r\n", HTTP1},
		{"get / HTTP/1.1\r\n", HTTP1},
		{"M-SEARCH * HTTP/1.1\r\n", HTTP1},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP1},
		{"GET\t/ HTTP/1.1\r\n", HTTP1},
		{"GET\v/", HTTP1},
		{"GET\f/", HTTP1},
		{"GET\r/ HTTP/1.1", HTTP1},
		{"GET\r", NeedMore},
		{"PING\r\n", Unknown},
		{"PING\n", Unknown},
		{"\r\nGET / HTTP/1.1\r\n", HTTP1},
		{"\n", HTTP1},
		{" GET /", HTTP1},
		{"\tGET", HTTP1},
		{strings.Repeat("A", SniffLen-1), NeedMore},
		{strings.Repeat("A", SniffLen), HTTP1},
		{strings.Repeat("A", SniffLen-1) + "\r", HTTP1},
		{strings.Repeat("A", SniffLen-1) + "\r\n", HTTP1},
		{strings.Repeat("A", 40) + " / HTTP/1.1", HTTP1},
		// Neither.
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", Unknown}, // PostgreSQL SSLRequest
		{"SSH-2.0-OpenSSH_9.6\r\n", Unknown},
		{"{\"jsonrpc\":\"2.0\"}", Unknown},
		{"*1\r\n$4\r\nPING\r\n", Unknown},
		{"GET/", Unknown},
		{"GET:", Unknown},
		{"\x00", Unknown},
		{"\x7f", Unknown},
	}
	for _, tt := range tests {
		if got := Sniff([]byte(tt.in)); got != tt.want {
			t.Errorf("Sniff(%q) = %v, want %v", tt.in, got, tt.want)
		}
		checkSniffStable(t, []byte(tt.in))
	}
}

// checkSniffStable asserts the properties a caller relies on: once Sniff
// decides, more bytes do not change its answer, and it decides by
// SniffLen bytes.
func checkSniffStable(t *testing.T, in []byte) {
	t.Helper()
	decided := NeedMore
	for i := 0; i <= len(in); i++ {
		got := Sniff(in[:i])
		if decided != NeedMore && got != decided {
			t.Fatalf("Sniff(%q) = %v, but %v on %d bytes", in[:i], got, decided, len(in[:i])-1)
		}
		if i >= SniffLen && got == NeedMore {
			t.Fatalf("Sniff(%q) = NeedMore on %d bytes", in[:i], i)
		}
		decided = got
	}
}

func TestSniffRealClientHellos(t *testing.T) {
	for name, cfg := range helloConfigs() {
		if got := Sniff(firstFlight(t, cfg)); got != TLS {
			t.Errorf("%s: a real ClientHello sniffs as %v", name, got)
		}
	}
	if got := Sniff(firstFlight(t, &tls.Config{ServerName: "x.example", InsecureSkipVerify: true})[:1]); got != TLS {
		t.Errorf("first byte of a real hello sniffs as %v", got)
	}
}
