package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/elazarl/goproxy"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect"
	"github.com/agentg/agentg/rules"
)

// onConnect decides a CONNECT request before any tunnel exists: a denied
// tunnel gets its 403 and is closed, an allowed one is dialed to a checked
// address by dialChecked.
func (s *Server) onConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	r := ctx.Req
	f := flowFrom(r.Context())
	f.scheme = "tunnel"
	h, err := addr.ParseAuthority(host, 0)
	if err == nil && h.Port == 0 {
		err = fmt.Errorf("CONNECT %q has no port", host)
	}
	if err != nil {
		f.host.Name = host
		ctx.Resp = s.refuse(r, f, &refusal{status: http.StatusBadRequest, text: "agentg: " + err.Error()})
		return goproxy.RejectConnect, host
	}
	if ref := s.authorize(r.Context(), f, r, h); ref != nil {
		ctx.Resp = s.refuse(r, f, ref)
		return goproxy.RejectConnect, host
	}
	if yes, rule := s.cfg.Policy.Engine().Intercept(f.agent, h); yes {
		if s.mitm == nil {
			f.decision = rules.Decision{Action: rules.Deny, Rule: "builtin:no-ca",
				Reason: "policy rule " + rule + " intercepts this host but agentg has no CA configured"}
			ctx.Resp = s.refuse(r, f, s.denied(f))
			return goproxy.RejectConnect, host
		}
		f.tls = "intercepted"
		f.setStatus(http.StatusOK, "")
		return &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: s.interceptTunnel}, h.String()
	}
	f.setStatus(http.StatusOK, "")
	return &goproxy.ConnectAction{Action: goproxy.ConnectAccept}, h.String()
}

// connectFailed answers a CONNECT whose upstream could not be dialed.
func (s *Server) connectFailed(w io.Writer, ctx *goproxy.ProxyCtx, err error) {
	f := flowFrom(ctx.Req.Context())
	if f == nil || f.handedToTunnel() {
		return // a running tunnel broke: it closes and reports itself
	}
	f.setStatus(http.StatusBadGateway, err.Error())
	body := "agentg: upstream " + f.host.String() + " unreachable: " + err.Error() + "\n"
	fmt.Fprintf(w, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

// dialChecked is the only way out of the proxy: it dials the addresses
// that passed the policy for this request's flow, in order, and nothing
// else. Without a flow there is nothing checked to dial, so it refuses.
func (s *Server) dialChecked(ctx context.Context, network, address string) (net.Conn, error) {
	f := flowFrom(ctx)
	if f == nil || len(f.ips) == 0 {
		return nil, errors.New("agentg: refusing to dial an unchecked destination")
	}
	if _, port, err := net.SplitHostPort(address); err != nil || port != strconv.Itoa(int(f.host.Port)) {
		return nil, fmt.Errorf("agentg: dial %s does not match the checked destination %s", address, f.host)
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	var errs []error
	for _, ip := range f.ips {
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, f.host.Port).String())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.setDialed(ip)
		if f.method != http.MethodConnect {
			return c, nil
		}
		t := &tunnelConn{Conn: c, f: f, s: s}
		f.tunnel.Store(true)
		s.trackTunnel(t, true)
		return t, nil
	}
	return nil, errors.Join(errs...)
}

// tunnelConn is the upstream side of a CONNECT tunnel. It counts bytes each
// way and, when the tunnel closes, emits the tunnel's one event.
type tunnelConn struct {
	net.Conn
	f    *flow
	s    *Server
	once sync.Once

	// A spliced copy reports its byte count only when it returns, which
	// is after Close has unblocked it: Close waits for running splices
	// before it writes the event, so the counts are complete.
	mu       sync.Mutex
	closed   bool
	splicing sync.WaitGroup
}

func (t *tunnelConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.f.down.Add(int64(n))
	return n, err
}

func (t *tunnelConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.f.up.Add(int64(n))
	return n, err
}

// ReadFrom is the client→upstream copy of a tunnel. It first makes the
// TLS server name agree with the CONNECT host, then keeps the kernel's
// splice path when both ends are TCP.
func (t *tunnelConn) ReadFrom(r io.Reader) (int64, error) {
	sent, err := t.agree(r)
	if err != nil {
		return sent, err
	}
	var n int64
	if rf, ok := t.Conn.(io.ReaderFrom); ok {
		n, err = t.splice(&t.f.up, func() (int64, error) { return rf.ReadFrom(unwrapReader(r)) })
	} else {
		n, err = io.Copy(struct{ io.Writer }{t}, r)
	}
	return sent + n, err
}

// agree reads the client's first bytes. When they start a TLS handshake,
// the ClientHello's SNI must name the CONNECT host (or be absent): a
// permitted tunnel must not carry TLS for another name, which is how
// domain fronting works. Other protocols pass untouched. What was read is
// sent upstream only once it has been agreed to.
func (t *tunnelConn) agree(r io.Reader) (int64, error) {
	var first [1]byte
	if n, err := io.ReadFull(r, first[:]); n == 0 {
		return 0, err
	}
	if first[0] != dissect.RecordTypeHandshake {
		n, err := t.Write(first[:])
		return int64(n), err
	}
	sni, consumed, err := dissect.ClientHello(io.MultiReader(bytes.NewReader(first[:]), r))
	var refuse string
	switch {
	case err != nil:
		refuse = err.Error()
	case sni != "":
		h, cerr := addr.Canonical(sni)
		if cerr != nil || h.Name != t.f.host.Name {
			refuse = fmt.Sprintf("TLS SNI %q does not match the CONNECT host %s", sni, t.f.host.Name)
		}
	}
	if refuse != "" {
		t.f.mu.Lock()
		t.f.decision = rules.Decision{Action: rules.Deny, Rule: "builtin:sni-mismatch", Reason: refuse}
		t.f.mu.Unlock()
		return 0, errors.New(refuse)
	}
	n, err := t.Write(consumed)
	return int64(n), err
}

// splice runs one kernel-level copy that touches this connection and adds
// what it moved to counter.
func (t *tunnelConn) splice(counter *atomic.Int64, copy func() (int64, error)) (int64, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return 0, net.ErrClosed
	}
	t.splicing.Add(1)
	t.mu.Unlock()
	defer t.splicing.Done()
	n, err := copy()
	counter.Add(n)
	return n, err
}

func (t *tunnelConn) CloseWrite() error {
	if hc, ok := t.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return nil
}

func (t *tunnelConn) CloseRead() error {
	if hc, ok := t.Conn.(interface{ CloseRead() error }); ok {
		return hc.CloseRead()
	}
	return nil
}

func (t *tunnelConn) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	err := t.Conn.Close() // unblocks any splice reading or writing it
	t.once.Do(func() {
		t.splicing.Wait()
		t.s.trackTunnel(t, false)
		t.s.emit(t.f)
	})
	return err
}
