package test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Hostile or broken input gets a clear error and never takes the proxy
// down: after each case the proxy still serves a normal request.
func TestBadInput(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	tests := []struct {
		name, raw string
		status    int // 0: the connection may just be closed
	}{
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"binary junk", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400},
		{"missing version", "GET http://allowed.test/\r\n\r\n", 400},
		{"space in CONNECT host", "CONNECT exa mple.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"NUL in CONNECT host", "CONNECT exa\x00mple.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"huge header", "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n", 431},
		{"two Host headers", "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nHost: evil.test\r\n\r\n", 400},
		{"CONNECT port out of range", "CONNECT allowed.test:70000 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"CONNECT to a URL", "CONNECT http://allowed.test/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bad Proxy-Authorization", "GET http://allowed.test:" + up.port + "/ HTTP/1.1\r\nHost: allowed.test:" + up.port + "\r\nProxy-Authorization: Basic !!!\r\n\r\n", 407},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tt.raw)
			line, _ := bufio.NewReader(c).ReadString('\n')
			if tt.status != 0 && !strings.Contains(line, " "+itoa(tt.status)+" ") {
				t.Errorf("status line %q, want %d", line, tt.status)
			}
			if tt.status != 0 {
				e.waitEvent(map[string]any{"status": tt.status, "decision": "deny", "client": c.LocalAddr().String()})
			}
			if resp, _ := get(t, e.client("", "", nil), "http://allowed.test:"+up.port+"/"); resp.StatusCode != 200 {
				t.Fatalf("proxy unhealthy after %s: %d", tt.name, resp.StatusCode)
			}
		})
	}
}

// A client that disappears mid-request must not leave the proxy stuck or
// panicking.
func TestAbruptClients(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	for _, raw := range []string{
		"GET http://allowed.test:" + up.port + "/ HTTP/1.1\r\nHost: allo",
		"POST http://allowed.test:" + up.port + "/ HTTP/1.1\r\nHost: allowed.test:" + up.port + "\r\nContent-Length: 1000\r\n\r\nshort",
		"CONNECT allowed.test:" + up.port + " HTTP/1.1\r\nHost: allowed.test\r\n\r\nGET / HTTP/1.1\r\n",
	} {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		c.Close()
	}
	if resp, _ := get(t, e.client("", "", nil), "http://allowed.test:"+up.port+"/"); resp.StatusCode != 200 {
		t.Fatalf("proxy unhealthy: %d", resp.StatusCode)
	}
}
