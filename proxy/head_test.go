package proxy

import (
	"strconv"
	"strings"
	"testing"
)

// The framer must find every request head, and only request heads,
// however the bytes are split across reads.
func TestHostConnFramer(t *testing.T) {
	fake := "GET http://x/ HTTP/1.1\r\nHost: evil\r\n\r\n"
	tests := []struct {
		name   string
		stream string
		want   []head
		done   bool
	}{
		{"one request", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", []head{{"a", true}}, false},
		{"no host", "GET http://a/ HTTP/1.0\r\n\r\n", []head{{}}, false},
		{"content-length body hides a head",
			"POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: " + itoa(len(fake)) + "\r\n\r\n" + fake + "GET http://b/ HTTP/1.1\r\nhost:  b \r\n\r\n",
			[]head{{"a", true}, {"b", true}}, false},
		{"chunked body with extension and trailer",
			"POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"3;ext=1\r\nabc\r\n" + hex(len(fake)) + "\r\n" + fake + "\r\n0\r\nX-Trailer: 1\r\n\r\n" +
				"GET http://b/ HTTP/1.1\r\nHost: b\r\n\r\n",
			[]head{{"a", true}, {"b", true}}, false},
		{"chunked without trailer", "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://b/ HTTP/1.1\r\nHost: b\r\n\r\n",
			[]head{{"a", true}, {"b", true}}, false},
		{"leading blank lines", "\r\n\r\nGET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", []head{{"a", true}}, false},
		{"two hosts never match", "GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", []head{{"", true}}, false},
		{"CONNECT ends HTTP", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n" + fake, []head{{"a", true}}, true},
		{"upgrade ends HTTP", "GET http://a/ HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n" + fake, []head{{"a", true}}, true},
		{"bad chunk size", "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + fake, []head{{"a", true}}, true},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 3, 7, len(tt.stream)} {
			c := &hostConn{}
			for i := 0; i < len(tt.stream); i += step {
				end := min(i+step, len(tt.stream))
				if c.state != stDone {
					c.feed([]byte(tt.stream[i:end]))
				}
			}
			if got := c.heads; !equalHeads(got, tt.want) {
				t.Errorf("%s (reads of %d): heads %+v, want %+v", tt.name, step, got, tt.want)
			}
			if (c.state == stDone) != tt.done {
				t.Errorf("%s (reads of %d): done = %v, want %v", tt.name, step, c.state == stDone, tt.done)
			}
		}
	}
}

func TestParseServerError(t *testing.T) {
	status, reason, ok := parseServerError([]byte("HTTP/1.1 400 Bad Request" + serverErrorHeaders + "400 Bad Request: malformed Host header"))
	if !ok || status != 400 || !strings.Contains(reason, "malformed Host") {
		t.Errorf("net/http error not recognised: %d %q %v", status, reason, ok)
	}
	if _, _, ok := parseServerError([]byte("HTTP/1.1 400 Bad Request\r\nDate: x\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nfrom upstream")); ok {
		t.Error("a handler's response was taken for a net/http error")
	}
}

func equalHeads(a, b []head) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func itoa(n int) string { return strconv.Itoa(n) }
func hex(n int) string  { return strconv.FormatInt(int64(n), 16) }
