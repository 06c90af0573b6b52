package test

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Requests inside an intercepted tunnel that no well-behaved client sends:
// each is refused with an event, and the upstream sees nothing of it.

// Issue 11: an HTTP/2 CONNECT stream inside an intercepted tunnel opened a
// second, unchecked tunnel (its DATA reached the upstream as raw bytes),
// and a :method that is not an HTTP token went to the policy as a method.
func TestInsideHTTP2OddRequests(t *testing.T) {
	reqs := &requestLog{}
	e, upCA := newMitmEnv(t, mitmPolicy(`
http:
  - deny: "DELETE example.com/repos/**"
    id: no-delete
`), nil)
	up := tlsUpstream(t, upCA.leaf(t, "example.com", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), reqs.handler())
	own := "example.com:" + up.port
	smuggled := []byte("DELETE /repos/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n")

	tests := []struct {
		name   string
		fields []string
		body   []byte
	}{
		{"CONNECT to another authority", []string{":method", "CONNECT", ":authority", "other.test:80"}, smuggled},
		{"CONNECT to the tunnel's authority", []string{":method", "CONNECT", ":authority", own}, smuggled},
		{"method with spaces", []string{":method", "GET /x HTTP/1.1", ":scheme", "https", ":path", "/x", ":authority", own}, nil},
		{"method with a line break", []string{":method", "GET /x HTTP/1.1\r\nX:", ":scheme", "https", ":path", "/x", ":authority", own}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, raw := mitmTLS(t, e, own, "h2")
			h := newH2Conn(t, tc)
			h.headers(1, tt.body == nil, tt.fields...)
			if tt.body != nil {
				h.data(1, false, tt.body)
			}
			got := h.response(1)
			if n, err := strconv.Atoi(got); err == nil && n < 400 {
				t.Fatalf("answered %s, want a refusal", got)
			}
			ev := waitEventWhere(t, e, "denying the stream", func(ev event) bool {
				return ev.str("decision") == "deny" && ev.str("client") == raw.LocalAddr().String() && ev.str("scheme") != "tunnel"
			})
			t.Logf("answer %s, event rule %q status %v", got, ev.str("rule"), ev["status"])
			tc.Close()
			if seen := reqs.all(); len(seen) != 0 {
				t.Fatalf("the upstream was asked %q", seen)
			}
		})
	}
}

// Issue 11: requests that net/http refuses itself inside an intercepted
// HTTP/1 tunnel never reached a handler, so they had no event; and the
// tunnel's server accepted heads far over the proxy's 64 KiB limit.
func TestInsideHTTP1Malformed(t *testing.T) {
	reqs := &requestLog{}
	e, upCA := newMitmEnv(t, mitmPolicy(""), nil)
	up := tlsUpstream(t, upCA.leaf(t, "example.com", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), reqs.handler())
	own := "example.com:" + up.port
	tests := []struct {
		name, raw string
		status    int
	}{
		{"two Host headers", "GET /x HTTP/1.1\r\nHost: " + own + "\r\nHost: " + own + "\r\n\r\n", 400},
		{"header line without a colon", "GET /x HTTP/1.1\r\nHost: " + own + "\r\nNoColonHere\r\n\r\n", 400},
		{"head over 64 KiB", "GET /x HTTP/1.1\r\nHost: " + own + "\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, raw := mitmTLS(t, e, own, "http/1.1")
			go io.WriteString(tc, tt.raw) // a refusal may come before the whole head is read
			resp, err := readResponse(tc)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp != tt.status {
				t.Fatalf("status %d, want %d", resp, tt.status)
			}
			waitEventWhere(t, e, "denying the request", func(ev event) bool {
				return ev.str("decision") == "deny" && ev.str("client") == raw.LocalAddr().String() &&
					ev.str("scheme") != "tunnel" && ev.num("status") == float64(tt.status)
			})
			if seen := reqs.all(); len(seen) != 0 {
				t.Fatalf("the upstream was asked %q", seen)
			}
		})
	}
}

// readResponse reads one response status from r.
func readResponse(r io.Reader) (int, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, io.ErrUnexpectedEOF
	}
	return strconv.Atoi(f[1])
}
