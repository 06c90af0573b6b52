package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/elazarl/goproxy"
	"github.com/rs/zerolog"
)

// goproxy is the CONNECT front and nothing else: a request that is not a
// CONNECT, were it ever to reach it, is not forwarded (its transport and
// CONNECT dialer refuse), over a real listener and a real upstream.
func TestConnectFrontDialsNothing(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	seen := make(chan string, 4)
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			seen <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	l := zerolog.Nop()
	front := newConnectFront(&l, func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return goproxy.OkConnect, host // would make goproxy dial the host itself
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, front)

	for _, req := range []string{
		"GET http://" + up.Addr().String() + "/ HTTP/1.1\r\nHost: " + up.Addr().String() + "\r\n\r\n",
		"CONNECT " + up.Addr().String() + " HTTP/1.1\r\nHost: " + up.Addr().String() + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		t.Run(strings.Fields(req)[0]+" "+strings.Fields(req)[1], func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprint(c, req)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Fatalf("the front answered %s: it forwarded", resp.Status)
				}
			} // else: it closed the connection, which forwards nothing either
		})
	}
	// The upstream saw none of it: a marker dialed now is the first
	// connection it accepts.
	m, err := net.Dial("tcp", up.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if first := <-seen; first != m.LocalAddr().String() {
		t.Errorf("the upstream accepted %s before the marker %s: goproxy dialed it", first, m.LocalAddr())
	}
}
