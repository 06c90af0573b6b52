package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/agentg/agentg/dissect"
)

// A refusal agentg answers on a connection itself (a CONNECT, a tunnel
// whose dial failed) reaches a real client as the response it says:
// status, text, headers, and whether the connection ends.
func TestRefusalResponse(t *testing.T) {
	tests := []struct {
		name string
		ref  refusal
	}{
		{"forbidden", refusal{status: http.StatusForbidden, text: "agentg: x.test:443 denied by rule default",
			header: http.Header{"X-Agentg-Rule": {"default"}}}},
		{"proxy auth", refusal{status: http.StatusProxyAuthRequired, text: "agentg: bad credentials for agent a",
			header: http.Header{"Proxy-Authenticate": {`Basic realm="agentg"`}}}},
		{"bad gateway, closed", refusal{status: http.StatusBadGateway, text: "agentg: upstream x.test:443 unreachable", close: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli := tcpPair(t)
			go func() {
				tt.ref.response().Write(srv)
				srv.Close()
			}()
			resp, err := http.ReadResponse(bufio.NewReader(cli), &http.Request{Method: http.MethodConnect})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.ref.status || string(body) != tt.ref.text+"\n" {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.ref.status, tt.ref.text+"\n")
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			for k, v := range tt.ref.header {
				if got := resp.Header.Get(k); got != v[0] {
					t.Errorf("%s: %q, want %q", k, got, v[0])
				}
			}
			if resp.Close != tt.ref.close {
				t.Errorf("Connection close %v, want %v", resp.Close, tt.ref.close)
			}
		})
	}
}

// refusal.record: a 403 is explained by its decision, anything else by
// its text without the "agentg: " prefix.
func TestRefusalRecord(t *testing.T) {
	tests := []struct {
		ref        refusal
		status     int
		err        string
		previously string
	}{
		{refusal{status: http.StatusForbidden, text: "agentg: denied"}, http.StatusForbidden, "", ""},
		{refusal{status: http.StatusForbidden, text: "agentg: denied"}, http.StatusForbidden, "kept", "kept"},
		{refusal{status: http.StatusServiceUnavailable, text: "agentg: 3 tunnels are open"}, http.StatusServiceUnavailable, "3 tunnels are open", ""},
	}
	for _, tt := range tests {
		f := &flow{err: tt.previously}
		tt.ref.record(f)
		if f.status != tt.status || f.err != tt.err {
			t.Errorf("%q recorded %d %q, want %d %q", tt.ref.text, f.status, f.err, tt.status, tt.err)
		}
	}
}

// The first bytes name the protocol, over a real connection, whatever
// way they arrive; nothing within the wait is an error, not a guess.
func TestSniffWithin(t *testing.T) {
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00}
	tests := []struct {
		name   string
		writes [][]byte
		want   dissect.Protocol
		err    bool
	}{
		{"TLS record", [][]byte{hello}, dissect.TLS, false},
		{"TLS byte by byte", [][]byte{hello[:1], hello[1:2], hello[2:]}, dissect.TLS, false},
		{"HTTP/1", [][]byte{[]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")}, dissect.HTTP1, false},
		{"HTTP/1 in pieces", [][]byte{[]byte("PO"), []byte("ST /x HTTP/1.1\r\n")}, dissect.HTTP1, false},
		{"opaque", [][]byte{[]byte("SSH-2.0-OpenSSH_9.6\r\n")}, dissect.Unknown, false},
		{"silence", nil, dissect.NeedMore, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli := tcpPair(t)
			go func() {
				for _, w := range tt.writes {
					cli.Write(w)
					time.Sleep(5 * time.Millisecond) // separate segments
				}
			}()
			br := bufio.NewReaderSize(srv, 4096)
			got, err := sniffWithin(srv, br, 300*time.Millisecond)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("sniff = %v, %v; want %v (error %v)", got, err, tt.want, tt.err)
			}
			if !tt.err {
				// Nothing was consumed: the bytes are still there for the gate.
				var n int
				for _, w := range tt.writes {
					n += len(w)
				}
				if br.Buffered() == 0 || br.Buffered() > n {
					t.Errorf("%d bytes buffered of %d sent", br.Buffered(), n)
				}
			}
		})
	}
}

// tcpPair is a connected pair of real loopback TCP connections.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}
