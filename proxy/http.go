package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"

	"github.com/elazarl/goproxy"

	"github.com/agentg/agentg/addr"
)

// onRequest decides a plain HTTP (absolute-form) request. The request URI's
// authority is what is checked and dialed; a Host header that names
// anything else is refused with 421 rather than trusted.
func (s *Server) onRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	f := flowFrom(r.Context())
	f.scheme, f.path = r.URL.Scheme, r.URL.EscapedPath()
	if r.URL.Scheme != "http" {
		return r, s.refuse(r, f, &refusal{status: http.StatusBadRequest,
			text: "agentg: only http:// URLs are forwarded as requests; use CONNECT for " + r.URL.Scheme})
	}
	h, err := addr.ParseAuthority(r.URL.Host, 80)
	if err != nil {
		return r, s.refuse(r, f, &refusal{status: http.StatusBadRequest, text: "agentg: " + err.Error()})
	}
	f.host = h
	if ref := checkHostHeader(r, h); ref != nil {
		return r, s.refuse(r, f, ref)
	}
	if ref := s.authorize(r.Context(), f, r, h); ref != nil {
		return r, s.refuse(r, f, ref)
	}

	// The upstream sees the canonical authority that was checked, whatever
	// spelling the client used.
	r.URL.Host = authority(h, 80)
	r.Host = r.URL.Host
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, n: &f.up}
	}
	return r.WithContext(traceDialed(r.Context(), f)), nil
}

// onResponse counts the response body, and turns a failed round trip into a
// 502 that says why.
func (s *Server) onResponse(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	f := flowFrom(ctx.Req.Context())
	if f == nil {
		return resp
	}
	if resp == nil {
		reason := "no response"
		if ctx.Error != nil {
			reason = ctx.Error.Error()
		}
		f.setStatus(http.StatusBadGateway, reason)
		return goproxy.NewResponse(ctx.Req, "text/plain; charset=utf-8", http.StatusBadGateway,
			"agentg: upstream "+f.host.String()+" failed: "+reason+"\n")
	}
	f.mu.Lock()
	answered := f.status != 0
	f.mu.Unlock()
	if answered {
		return resp // agentg's own refusal
	}
	f.setStatus(resp.StatusCode, "")
	resp.Body = countResponseBody(resp.Body, f)
	return resp
}

// refuse answers a request itself and records the answer in the flow.
func (s *Server) refuse(r *http.Request, f *flow, ref *refusal) *http.Response {
	recordRefusal(f, ref)
	resp := goproxy.NewResponse(r, "text/plain; charset=utf-8", ref.status, ref.text+"\n")
	for k, v := range ref.header {
		resp.Header[k] = v
	}
	resp.Header.Set("Content-Length", strconv.Itoa(len(ref.text)+1))
	return resp
}

func recordRefusal(f *flow, ref *refusal) {
	reason := "" // a 403 is explained by its decision
	if ref.status != http.StatusForbidden {
		reason = strings.TrimPrefix(ref.text, "agentg: ")
	}
	f.setStatus(ref.status, reason)
}

// serveNonProxy answers origin-form requests: agentg is not a web server.
func (s *Server) serveNonProxy(w http.ResponseWriter, r *http.Request) {
	f := flowFrom(r.Context())
	const text = "agentg is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port\n"
	if f != nil {
		f.path = r.URL.Path
		f.setStatus(http.StatusBadRequest, "not a proxy request")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	io.WriteString(w, text)
}

// checkHostHeader compares the Host header the client sent with the
// request URI's authority.
func checkHostHeader(r *http.Request, h addr.Host) *refusal {
	head, ok := headOf(r)
	if !ok {
		return &refusal{status: http.StatusBadRequest, text: "agentg: could not read the request head"}
	}
	if !head.hasHost {
		return nil
	}
	return checkAuthority(head.host, 80, h)
}

// checkAuthority refuses a Host header (or :authority) that names another
// destination than the one that was checked, with defPort standing in for
// a missing port.
func checkAuthority(got string, defPort uint16, want addr.Host) *refusal {
	h, err := addr.ParseAuthority(got, defPort)
	if err != nil || h.Name != want.Name || h.Port != want.Port {
		return &refusal{status: http.StatusMisdirectedRequest,
			text: "agentg: Host " + strconv.Quote(got) + " does not match the checked destination " + want.String()}
	}
	return nil
}

// authority is h as it belongs in a URL or Host header: the port is left
// out when it is the scheme's default.
func authority(h addr.Host, defPort uint16) string {
	if h.Port == defPort {
		return h.Hostname()
	}
	return h.String()
}

// traceDialed watches which connection the transport hands the request.
// A pooled connection was dialed for an earlier request, perhaps another
// agent's or under an older policy: if its address is not one this
// request's check passed, it is closed before anything is written on it,
// and the transport dials afresh through dialChecked (or, for a request it
// cannot retry, fails with 502). Otherwise the address goes in the event.
func traceDialed(ctx context.Context, f *flow) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		ta, ok := info.Conn.RemoteAddr().(*net.TCPAddr)
		if !ok {
			info.Conn.Close()
			return
		}
		ip := ta.AddrPort().Addr().Unmap()
		if !slices.Contains(f.ips, ip) {
			info.Conn.Close()
			return
		}
		f.setDialed(ip)
	}})
}

func tlsVersionName(v uint16) string { return tls.VersionName(v) }

type countingBody struct {
	io.ReadCloser
	n interface{ Add(int64) int64 }
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// countingRW is a response body that is also the upgraded connection of a
// WebSocket (101) response: goproxy writes the client's frames into it.
type countingRW struct {
	countingBody
	w  io.Writer
	up interface{ Add(int64) int64 }
}

func (b *countingRW) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	b.up.Add(int64(n))
	return n, err
}

func countResponseBody(body io.ReadCloser, f *flow) io.ReadCloser {
	if body == nil || body == http.NoBody {
		return body
	}
	cb := countingBody{ReadCloser: body, n: &f.down}
	if w, ok := body.(io.Writer); ok {
		return &countingRW{countingBody: cb, w: w, up: &f.up}
	}
	return &cb
}
