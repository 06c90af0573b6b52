package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/elazarl/goproxy"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

// The CONNECT door. goproxy is the front: it reads the CONNECT, asks
// onConnect, writes a refusal, and hijacks the connection for an allowed
// tunnel. Every byte after the CONNECT is agentg's: goproxy's hijack drops
// the bytes its server had already buffered (a ClientHello sent in the same
// write as the CONNECT), so the ResponseWriter goproxy is given hands out a
// connection that still holds them, and the tunnel itself (runTunnel) never
// passes through goproxy's copy loops.

func (s *Server) serveConnect(w http.ResponseWriter, r *http.Request) {
	f := s.newFlow("connect", r.RemoteAddr, r.Method)
	f.scheme = "tunnel"
	if t := trackerOf(r); t != nil {
		t.take() // keep the tracker in step
	}
	s.gp.ServeHTTP(keepBuffered{w}, r.WithContext(withFlow(r.Context(), f)))
	if f.tun != nil {
		s.tunnels.remove(f.tun) // admitted but never run (the hijack failed)
	}
	s.emit(f)
}

// onConnect decides a CONNECT before any tunnel exists: a denied tunnel
// gets its refusal and is closed; an allowed one is admitted (within the
// tunnel caps) and handed to runTunnel.
func (s *Server) onConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	r := ctx.Req
	f := flowFrom(r.Context())
	reject := func(ref *refusal) (*goproxy.ConnectAction, string) {
		ctx.Resp = s.connectRefusal(r, f, ref)
		return goproxy.RejectConnect, host
	}
	h, err := addr.ParseAuthority(host, 0)
	if err == nil && h.Port == 0 {
		err = fmt.Errorf("CONNECT %q has no port", host)
	}
	if err != nil {
		f.host.Name = host
		return reject(&refusal{status: http.StatusBadRequest, text: "agentg: " + err.Error()})
	}
	if ref := s.authorize(r.Context(), f, r, h); ref != nil {
		return reject(ref)
	}
	eng := s.cfg.Policy.Engine()
	tp := s.tunnelPolicy(r.Context(), eng, f.agent, h)
	t := &tunnel{f: f, allowECH: tp.AllowECH}
	if tp.Intercept {
		if s.mitm == nil {
			f.decision = rules.Decision{Action: rules.Deny, Rule: "builtin:no-ca",
				Reason: "policy rule " + tp.Rule + " intercepts this host but agentg has no CA configured"}
			return reject(s.denied(f))
		}
		t.intercepted = true
		f.tls = "intercepted"
	}
	if d, ok := s.admitTunnel(t); !ok {
		f.decision = d
		return reject(&refusal{status: http.StatusServiceUnavailable, text: "agentg: " + d.Reason})
	}
	f.tun = t
	return &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: func(_ *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
		f.tun = nil // runTunnel owns it now
		s.runTunnel(r.Context(), t, client)
	}}, h.String()
}

// connectRefusal is a refusal as the response goproxy writes to a CONNECT.
func (s *Server) connectRefusal(r *http.Request, f *flow, ref *refusal) *http.Response {
	reason := ""
	if ref.status != http.StatusForbidden {
		reason = ref.text
	}
	f.setStatus(ref.status, trimAgentg(reason))
	resp := goproxy.NewResponse(r, "text/plain; charset=utf-8", ref.status, ref.text+"\n")
	for k, v := range ref.header {
		resp.Header[k] = v
	}
	resp.Header.Set("Content-Length", strconv.Itoa(len(ref.text)+1))
	return resp
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

// bufferedConn reads what br holds, then the connection.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.br != nil && c.br.Buffered() > 0 {
		return c.br.Read(p)
	}
	return c.Conn.Read(p)
}

// raw unwraps c to the TCP connection beneath when no wrapper holds bytes
// that have not been read yet, so a relay can use splice(2).
func raw(c net.Conn) (*net.TCPConn, bool) {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v, true
		case *outConn:
			return v.TCPConn, true
		case *rewound:
			if len(v.b) > 0 {
				return nil, false
			}
			c = v.Conn
		case *bufferedConn:
			if v.br != nil && v.br.Buffered() > 0 {
				return nil, false
			}
			c = v.Conn
		case *hostTracker:
			inner := v.raw()
			if inner == net.Conn(v) {
				return nil, false
			}
			c = inner
		default:
			return nil, false
		}
	}
}
