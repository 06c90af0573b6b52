package proxy

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// agentg's own addresses: a destination that reaches one of agentg's
// listeners is never dialed, whatever the policy opens (builtin:self).
//
// The check works on the canonical address the dialer would dial (every
// spelling of a host, "0x0", "0.0", "[::]", a resolve: entry, is already
// one netip.Addr by then), and asks what the kernel would do with it
// rather than comparing it with the listener's address literally:
//   - an unspecified address (0.0.0.0/8, ::) is this host: connect(2) to
//     it reaches the loopback interface;
//   - a listener bound to loopback answers on the whole loopback range of
//     both families, as far as this check is concerned;
//   - a listener bound to an unspecified address answers on every address
//     of every local interface (read from the system, refreshed);
//   - IPv4-mapped IPv6 addresses are their IPv4 address.
// The dialer checks again once connected (selfConn): a connection whose
// peer is the host itself on a port agentg listens on is closed before a
// byte is sent, so no spelling, resolution or interface change that the
// first check missed can step around it.

// selfSet holds agentg's listening addresses as bound. Read on every
// dial and decision, written once per listener: swapped whole.
type selfSet struct {
	mu        sync.Mutex
	listeners atomic.Pointer[[]netip.AddrPort]

	local      atomic.Pointer[localAddrs]
	refreshing atomic.Bool
	// interfaceAddrs lists the host's addresses; net.InterfaceAddrs
	// unless a test says otherwise.
	interfaceAddrs func() ([]net.Addr, error)
}

// localAddrs is a snapshot of the host's interface addresses.
type localAddrs struct {
	at  time.Time
	ips []netip.Addr
}

// localRefresh is how old a snapshot of the interface addresses may be
// before the next check reads them again.
const localRefresh = time.Second

// add records a listener's address. A unix socket or anything without
// an IP and port is not reachable by TCP and is skipped.
func (s *selfSet) add(a net.Addr) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		p, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return
		}
		ap = p
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []netip.AddrPort
	if p := s.listeners.Load(); p != nil {
		cur = *p
	}
	if slices.Contains(cur, ap) {
		return
	}
	next := append(slices.Clone(cur), ap)
	s.listeners.Store(&next)
	if ap.Addr().IsUnspecified() {
		s.refresh(time.Now())
	}
}

// has reports whether a connection to ap would reach one of the
// listeners. Most destinations are told apart by their port alone, which
// is all the hot path pays.
func (s *selfSet) has(ap netip.AddrPort) bool {
	p := s.listeners.Load()
	if p == nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, l := range *p {
		if l.Port() == ap.Port() && s.reaches(l.Addr(), ip) {
			return true
		}
	}
	return false
}

// reaches reports whether a connection to ip would arrive at a listener
// bound to bound (on the same port).
func (s *selfSet) reaches(bound, ip netip.Addr) bool {
	switch {
	case ip == bound, isUnspecified(ip):
		return true
	case bound.IsUnspecified():
		return ip.IsLoopback() || s.isLocal(ip)
	case bound.IsLoopback():
		return ip.IsLoopback()
	}
	return false
}

// isUnspecified is 0.0.0.0/8 ("this network", which Linux takes for this
// host) and ::.
func isUnspecified(ip netip.Addr) bool {
	return ip.IsUnspecified() || ip.Is4() && ip.As4()[0] == 0
}

// isLocal reports whether ip is an address of one of the host's
// interfaces, refreshing the snapshot when it is old. One caller at a time
// refreshes; the others use the snapshot they find.
func (s *selfSet) isLocal(ip netip.Addr) bool {
	now := time.Now()
	l := s.local.Load()
	if l == nil || now.Sub(l.at) > localRefresh {
		if s.refreshing.CompareAndSwap(false, true) {
			l = s.refresh(now)
			s.refreshing.Store(false)
		}
	}
	return l != nil && slices.Contains(l.ips, ip)
}

// refresh reads the interface addresses. When they cannot be read the
// last snapshot stays (the check after connecting still holds).
func (s *selfSet) refresh(now time.Time) *localAddrs {
	list := s.interfaceAddrs
	if list == nil {
		list = net.InterfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		return s.local.Load()
	}
	l := &localAddrs{at: now}
	for _, a := range addrs {
		var ip netip.Addr
		switch a := a.(type) {
		case *net.IPNet:
			ip, _ = netip.AddrFromSlice(a.IP)
		case *net.IPAddr:
			ip, _ = netip.AddrFromSlice(a.IP)
		default:
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ip = p.Addr()
			}
		}
		if ip.IsValid() {
			l.ips = append(l.ips, ip.Unmap().WithZone(""))
		}
	}
	s.local.Store(l)
	return l
}

// errSelf is a dial refused because it reaches agentg itself.
var errSelf = errors.New("agentg: the destination is agentg's own listening address")

// connectedToSelf is the check after connecting: c's peer is this host
// (the kernel picked the peer's address as the local one, as it does for
// every connection that stays on the host, or it is loopback) and a
// listener of agentg's answers there.
func (s *selfSet) connectedToSelf(c net.Conn) bool {
	ra, ok1 := c.RemoteAddr().(*net.TCPAddr)
	la, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return false
	}
	remote, local := ra.AddrPort(), la.AddrPort()
	rip := remote.Addr().Unmap().WithZone("")
	if rip != local.Addr().Unmap().WithZone("") && !rip.IsLoopback() {
		return false
	}
	p := s.listeners.Load()
	if p == nil {
		return false
	}
	for _, l := range *p {
		if l.Port() != remote.Port() {
			continue
		}
		// The peer is on this host: bound unspecified means every local
		// address, as does a bound address the peer is.
		if l.Addr() == rip || l.Addr().IsUnspecified() || s.reaches(l.Addr(), rip) {
			return true
		}
	}
	return false
}
