//go:build linux

package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// The Linux socket options of the transparent door: the original
// destination netfilter's NAT recorded (SO_ORIGINAL_DST and
// IP6T_SO_ORIGINAL_DST, both option 80 of linux/netfilter_ipv4.h and
// linux/netfilter_ipv6/ip6_tables.h, which golang.org/x/sys does not
// name), IP_TRANSPARENT for TPROXY, and SO_MARK on outbound sockets.

const soOriginalDst = 80

// originalDst is where a redirected connection was going. A connection
// with no NAT record (TPROXY delivers it unchanged, or it was not
// redirected at all) was going to its local address: the caller's self
// check refuses the latter.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("original destination: %T is not a TCP connection", c)
	}
	la, _ := tc.LocalAddr().(*net.TCPAddr)
	if la == nil {
		return netip.AddrPort{}, errors.New("original destination: no local address")
	}
	local := la.AddrPort()
	rc, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	var dst netip.AddrPort
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		if local.Addr().Unmap().Is4() {
			// struct sockaddr_in in the first 16 bytes of what the
			// kernel writes back.
			var m *unix.IPv6Mreq
			m, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, soOriginalDst)
			if serr == nil {
				a := m.Multiaddr
				dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[2:4]))
			}
			return
		}
		// struct sockaddr_in6, written where IPv6MTUInfo keeps one.
		var i *unix.IPv6MTUInfo
		i, serr = unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, soOriginalDst)
		if serr == nil {
			port := binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, i.Addr.Port))
			dst = netip.AddrPortFrom(netip.AddrFrom16(i.Addr.Addr), port)
		}
	})
	switch {
	case cerr != nil:
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", cerr)
	case errors.Is(serr, unix.ENOENT):
		return netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), nil
	case serr != nil:
		return netip.AddrPort{}, fmt.Errorf("original destination: getsockopt SO_ORIGINAL_DST: %w", serr)
	}
	return netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()), nil
}

// transparentControl lets a listener accept TPROXY connections
// (IP_TRANSPARENT). Without CAP_NET_ADMIN it cannot, which is no error:
// REDIRECT needs no such thing.
func transparentControl(network, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		if network == "tcp6" {
			unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
		}
		unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
	})
}

// markControl sets SO_MARK on each outbound socket; mark 0 sets nothing.
func markControl(mark int) func(network, address string, c syscall.RawConn) error {
	if mark == 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set SO_MARK %#x on an outbound socket (agentg needs CAP_NET_ADMIN for it): %w", mark, serr)
		}
		return nil
	}
}

const markSupported = true
