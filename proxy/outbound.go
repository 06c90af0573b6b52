package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Outbound connections. Every connection agentg opens toward an upstream
// (and every DNS query of its own resolver, when it marks) is dialed here,
// so that one place:
//   - marks it with Config.Mark (SO_MARK), which the rules that redirect
//     agents to the transparent listener match to let agentg's own
//     traffic pass (see netsetup);
//   - remembers the local address of each open one, so that a connection
//     the transparent listener accepts from one of them is known for what
//     it is, a loop, and is refused rather than dialed once more.

// outbound is the set of open outbound connections by local address.
type outbound struct{ m sync.Map } // netip.AddrPort → struct{}

func (o *outbound) has(ap netip.AddrPort) bool {
	_, ok := o.m.Load(ap)
	return ok
}

// dialer is the net.Dialer of every outbound connection.
func (s *Server) dialer() *net.Dialer {
	return &net.Dialer{Timeout: s.cfg.DialTimeout, Control: markControl(s.cfg.Mark)}
}

// dialOut dials one outbound TCP connection and keeps its local address
// in the outbound set until it is closed.
// It refuses (errSelf) an address that reaches agentg itself, before
// dialing and again once connected, before a byte is sent (self.go).
func (s *Server) dialOut(ctx context.Context, address string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("agentg: dial %q: not an IP address and port: %w", address, err)
	} else if s.isSelf(ap) {
		return nil, fmt.Errorf("dial %s: %w", address, errSelf)
	}
	c, err := s.dialer().DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	if s.self.connectedToSelf(c) {
		c.Close()
		return nil, fmt.Errorf("dial %s: connected to %s: %w", address, c.RemoteAddr(), errSelf)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	la, ok := tc.LocalAddr().(*net.TCPAddr)
	if !ok {
		return c, nil
	}
	local := la.AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	s.outbound.m.Store(local, struct{}{})
	return &outConn{TCPConn: tc, release: func() { s.outbound.m.Delete(local) }}, nil
}

// outConn is an outbound connection; closing it takes it out of the set.
type outConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *outConn) Close() error {
	c.once.Do(c.release)
	return c.TCPConn.Close()
}

// markedResolver is a resolver whose queries carry the mark, so that
// agentg's own lookups are not redirected to the DNS filter either.
func markedResolver(mark int) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: MarkedDialer(mark).DialContext}
}

// MarkedDialer is a dialer whose sockets carry mark (SO_MARK; 0 sets
// none), the way agentg's own outbound connections do in transparent
// mode: the DNS filter dials its upstreams with it.
func MarkedDialer(mark int) *net.Dialer {
	return &net.Dialer{Control: markControl(mark)}
}
