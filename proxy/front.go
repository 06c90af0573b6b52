package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/elazarl/goproxy"
	"github.com/rs/zerolog"
)

// goproxy, in one place. It is the explicit door's CONNECT front and
// nothing more: it reads a CONNECT, asks onConnect, writes the refusal
// onConnect built, or hijacks the connection for an allowed tunnel. Every
// other request is served by agentg before goproxy could see it
// (Server.ServeHTTP), so what goproxy would use for them is taken away
// rather than left at its defaults (a transport that follows
// HTTP_PROXY and skips certificate checks): a request that somehow
// reached it would find nothing to dial with, and be refused.
//
// Its one workaround is keepBuffered: goproxy's hijack drops the bytes the
// server had already read past the CONNECT's head (a ClientHello sent in
// the same write), so the ResponseWriter it is given hands out a
// connection that still holds them.

// errFrontDial is what goproxy gets if it ever tries to dial itself.
var errFrontDial = errors.New("agentg: goproxy is only the CONNECT front; it dials nothing")

// newConnectFront is the goproxy server of the explicit door.
func newConnectFront(l *zerolog.Logger, onConnect goproxy.FuncHttpsHandler) *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	refuse := func(context.Context, string, string) (net.Conn, error) { return nil, errFrontDial }
	gp.Tr = &http.Transport{Proxy: nil, DialContext: refuse, DialTLSContext: refuse}
	gp.ConnectDial = func(string, string) (net.Conn, error) { return nil, errFrontDial }
	gp.ConnectDialWithReq = nil
	gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "agentg: not a CONNECT", http.StatusBadRequest)
	})
	gp.Logger = goproxyLogger{l}
	gp.OnRequest().HandleConnect(onConnect)
	return gp
}

// goproxyLogger sends goproxy's own chatter to the debug level.
type goproxyLogger struct{ l *zerolog.Logger }

func (g goproxyLogger) Printf(format string, v ...any) {
	g.l.Debug().Msgf(strings.TrimSuffix(format, "\n"), v...)
}

// keepBuffered is the ResponseWriter goproxy sees for a CONNECT. Its
// Hijack returns a connection that yields, first, whatever the server read
// past the CONNECT's head.
type keepBuffered struct{ http.ResponseWriter }

func (k keepBuffered) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(k.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	bc := &bufferedConn{Conn: c, br: rw.Reader}
	return bc, bufio.NewReadWriter(bufio.NewReader(bc), rw.Writer), nil
}

var _ http.Hijacker = keepBuffered{}
