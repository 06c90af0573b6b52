package proxy

import (
	"fmt"
	"net"
	"net/http"

	"github.com/elazarl/goproxy"

	"github.com/agentg/agentg/addr"
)

// explicitDoor is the explicit listener (HTTP_PROXY, HTTPS_PROXY): a
// CONNECT goes through goproxy's front (front.go) to onConnect and then
// agentg's tunnels, an absolute-form request to the exchange path,
// anything else is answered as not a proxy request. The tunnel itself
// (runTunnel) never passes through goproxy's copy loops.
type explicitDoor struct {
	s     *Server
	front *goproxy.ProxyHttpServer
}

func newExplicitDoor(s *Server) *explicitDoor {
	d := &explicitDoor{s: s}
	d.front = newConnectFront(s.log, d.onConnect)
	return d
}

func (d *explicitDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		d.serveConnect(w, r)
	case r.URL.IsAbs():
		d.s.serveExchange(w, r, exchange{door: doorAbsolute, scheme: "http"})
	default:
		d.serveNonProxy(w, r)
	}
}

func (d *explicitDoor) serveConnect(w http.ResponseWriter, r *http.Request) {
	s := d.s
	f := s.events.newFlow("connect", r.RemoteAddr, r.Method)
	f.scheme = "tunnel"
	if t := trackerOf(r); t != nil {
		t.take() // keep the tracker in step
	}
	d.front.ServeHTTP(keepBuffered{w}, r.WithContext(withFlow(r.Context(), f)))
	if f.tun != nil {
		s.tunnels.remove(f.tun) // admitted but never run (the hijack failed)
	}
	s.events.emit(f)
}

// onConnect decides a CONNECT before any tunnel exists: a denied tunnel
// gets its refusal and is closed; an allowed one is admitted (within the
// tunnel caps) and handed to runTunnel.
func (d *explicitDoor) onConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	s := d.s
	r := ctx.Req
	f := flowFrom(r.Context())
	reject := func(ref *refusal) (*goproxy.ConnectAction, string) {
		ctx.Resp = connectRefusal(f, ref)
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
	if ref := s.pipe.authorize(r.Context(), f, r, h); ref != nil {
		return reject(ref)
	}
	t, ref := s.openTunnel(r.Context(), f, false)
	if ref != nil {
		return reject(ref)
	}
	f.tun = t
	return &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: func(_ *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
		f.tun = nil // runTunnel owns it now
		s.runTunnel(r.Context(), t, client)
	}}, h.String()
}

// connectRefusal is a refusal as the response goproxy writes to a CONNECT,
// recorded in f.
func connectRefusal(f *flow, ref *refusal) *http.Response {
	ref.record(f)
	return ref.response()
}

// serveNonProxy answers origin-form requests: agentg is not a web server.
func (d *explicitDoor) serveNonProxy(w http.ResponseWriter, r *http.Request) {
	s := d.s
	f := s.events.newFlow("http", r.RemoteAddr, r.Method)
	defer s.events.emit(f)
	f.path = r.URL.Path
	defer s.guardBody(w, r).end()
	if t := trackerOf(r); t != nil {
		t.take() // keep the tracker in step
	}
	s.writeRefusal(w, f, &refusal{status: http.StatusBadRequest,
		text: "agentg is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port"})
}
