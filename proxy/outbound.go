package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/agentg/agentg/rules"
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

// checkedDialer is the one way out of agentg toward an upstream: it dials
// only addresses the policy checked for a flow (dialChecked, dialFlow),
// never one of agentg's own (self.go), marks every socket, and keeps the
// set of open outbound connections for the transparent door's loop check.
type checkedDialer struct {
	timeout time.Duration // per address tried
	mark    int           // SO_MARK; 0: none
	self    selfSet       // agentg's own listening addresses
	out     outbound      // open outbound connections
}

// isSelf reports whether a connection to ap would reach agentg itself.
func (d *checkedDialer) isSelf(ap netip.AddrPort) bool { return d.self.has(ap) }

// addSelf records one of agentg's listening addresses.
func (d *checkedDialer) addSelf(a net.Addr) { d.self.add(a) }

// outbound is the set of open outbound connections by local address.
type outbound struct{ m sync.Map } // netip.AddrPort → struct{}

func (o *outbound) has(ap netip.AddrPort) bool {
	_, ok := o.m.Load(ap)
	return ok
}

// netDialer is the net.Dialer of every outbound connection.
func (d *checkedDialer) netDialer() *net.Dialer {
	return &net.Dialer{Timeout: d.timeout, Control: markControl(d.mark)}
}

// dialOut dials one outbound TCP connection and keeps its local address
// in the outbound set until it is closed.
// It refuses (errSelf) an address that reaches agentg itself, before
// dialing and again once connected, before a byte is sent (self.go).
func (d *checkedDialer) dialOut(ctx context.Context, address string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("agentg: dial %q: not an IP address and port: %w", address, err)
	} else if d.isSelf(ap) {
		return nil, fmt.Errorf("dial %s: %w", address, errSelf)
	}
	c, err := d.netDialer().DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	if d.self.connectedToSelf(c) {
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
	d.out.m.Store(local, struct{}{})
	return &outConn{TCPConn: tc, release: func() { d.out.m.Delete(local) }}, nil
}

// dialChecked is how the forwarder's transports dial: the addresses that
// passed the policy for the request's flow, in order, and nothing else.
// Without a flow there is nothing checked to dial, so it refuses.
func (d *checkedDialer) dialChecked(ctx context.Context, network, address string) (net.Conn, error) {
	f := flowFrom(ctx)
	if f == nil || len(f.ips) == 0 {
		return nil, errors.New("agentg: refusing to dial an unchecked destination")
	}
	if _, port, err := net.SplitHostPort(address); err != nil || port != strconv.Itoa(int(f.host.Port)) {
		return nil, fmt.Errorf("agentg: dial %s does not match the checked destination %s", address, f.host)
	}
	return d.dialFlow(ctx, f)
}

// dialFlow dials the addresses that passed the policy for f, in order.
func (d *checkedDialer) dialFlow(ctx context.Context, f *flow) (net.Conn, error) {
	var errs []error
	for _, ip := range f.ips {
		c, err := d.dialOut(ctx, netip.AddrPortFrom(ip, f.host.Port).String())
		if errors.Is(err, errSelf) {
			// Never tried further: the decision is builtin:self.
			f.deny(rules.Decision{Action: rules.Deny, Rule: rules.RuleSelf, Reason: err.Error()})
			return nil, err
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.setDialed(ip)
		return c, nil
	}
	return nil, errors.Join(errs...)
}

var _ net.Conn = (*outConn)(nil)

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
