package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// The self check on canonical addresses: every address that reaches a
// listener counts, whatever the listener's address is spelled as.
func TestSelfSetReaches(t *testing.T) {
	lan := netip.MustParseAddr("192.0.2.10") // an interface address of the fake host
	lan6 := netip.MustParseAddr("2001:db8::10")
	iface := func() ([]net.Addr, error) {
		return []net.Addr{
			&net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)},
			&net.IPNet{IP: lan.AsSlice(), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: lan6.AsSlice(), Mask: net.CIDRMask(64, 128)},
		}, nil
	}
	for _, tt := range []struct {
		name      string
		listeners []string
		dest      string
		want      bool
	}{
		{"literal", []string{"127.0.0.1:9090"}, "127.0.0.1:9090", true},
		{"other port", []string{"127.0.0.1:9090"}, "127.0.0.1:9091", false},
		{"0.0.0.0 reaches loopback", []string{"127.0.0.1:9090"}, "0.0.0.0:9090", true},
		{"0.0.0.0/8 is this host", []string{"127.0.0.1:9090"}, "0.1.2.3:9090", true},
		{":: reaches loopback", []string{"127.0.0.1:9090"}, "[::]:9090", true},
		{"other loopback address", []string{"127.0.0.1:9090"}, "127.0.0.2:9090", true},
		{"::1 for a v4 loopback listener", []string{"127.0.0.1:9090"}, "[::1]:9090", true},
		{"mapped loopback", []string{"127.0.0.1:9090"}, "[::ffff:127.0.0.1]:9090", true},
		{"mapped unspecified", []string{"127.0.0.1:9090"}, "[::ffff:0.0.0.0]:9090", true},
		{"v6 loopback listener, v4 loopback", []string{"[::1]:9090"}, "127.0.0.1:9090", true},
		{"loopback listener, lan address", []string{"127.0.0.1:9090"}, "192.0.2.10:9090", false},
		{"loopback listener, public", []string{"127.0.0.1:9090"}, "198.51.100.1:9090", false},
		{"unspecified listener, lan", []string{"0.0.0.0:3128"}, "192.0.2.10:3128", true},
		{"unspecified listener, lan v6", []string{"[::]:3128"}, "[2001:db8::10]:3128", true},
		{"unspecified listener, mapped lan", []string{"[::]:3128"}, "[::ffff:192.0.2.10]:3128", true},
		{"unspecified listener, loopback", []string{"[::]:3128"}, "127.9.9.9:3128", true},
		{"unspecified listener, not local", []string{"0.0.0.0:3128"}, "192.0.2.11:3128", false},
		{"unspecified listener, other port", []string{"0.0.0.0:3128"}, "192.0.2.10:443", false},
		{"lan listener, lan", []string{"192.0.2.10:53"}, "192.0.2.10:53", true},
		{"lan listener, 0", []string{"192.0.2.10:53"}, "0.0.0.0:53", true},
		{"lan listener, loopback", []string{"192.0.2.10:53"}, "127.0.0.1:53", false},
		{"second listener", []string{"127.0.0.1:3128", "127.0.0.1:5353"}, "0.0.0.0:5353", true},
		{"no listener", nil, "0.0.0.0:80", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &selfSet{interfaceAddrs: iface}
			for _, l := range tt.listeners {
				s.add(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(l)))
			}
			if got := s.has(netip.MustParseAddrPort(tt.dest)); got != tt.want {
				t.Errorf("listeners %v: has(%s) = %v, want %v", tt.listeners, tt.dest, got, tt.want)
			}
		})
	}
}

// A UDP listener (the DNS filter's) counts by its port like a TCP one,
// and a unix socket is not a TCP destination at all.
func TestSelfSetAddrKinds(t *testing.T) {
	s := &selfSet{interfaceAddrs: func() ([]net.Addr, error) { return nil, nil }}
	s.add(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353})
	s.add(&net.UnixAddr{Name: "/run/agentg.sock", Net: "unix"})
	if !s.has(netip.MustParseAddrPort("0.0.0.0:5353")) {
		t.Error("a UDP listener's port on 0.0.0.0 is not self")
	}
	if s.has(netip.MustParseAddrPort("127.0.0.1:80")) {
		t.Error("another port is self")
	}
}

// The interface addresses are read again when they change.
func TestSelfSetRefreshesInterfaces(t *testing.T) {
	addrs := []net.Addr{}
	s := &selfSet{interfaceAddrs: func() ([]net.Addr, error) { return addrs, nil }}
	s.add(&net.TCPAddr{IP: net.IPv4zero, Port: 3128})
	dest := netip.MustParseAddrPort("192.0.2.20:3128")
	if s.has(dest) {
		t.Fatal("an address the host does not have is self")
	}
	addrs = []net.Addr{&net.IPNet{IP: net.IPv4(192, 0, 2, 20), Mask: net.CIDRMask(24, 32)}}
	old := *s.local.Load()
	old.at = old.at.Add(-2 * localRefresh) // the snapshot is stale
	s.local.Store(&old)
	if !s.has(dest) {
		t.Fatal("an address added to an interface is not self after the refresh")
	}
}

// The dialer refuses agentg's own listener over a real socket, before
// dialing for every spelling of the host, and after connecting when the
// check before could not know (here: the listener was not bound where the
// destination says, but the kernel took the connection there).
func TestDialOutRefusesSelf(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan string, 8) // the peers of what the listener accepted, in order
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	s := &checkedDialer{timeout: 2 * time.Second}
	s.self.interfaceAddrs = func() ([]net.Addr, error) { return nil, nil }
	s.addSelf(ln.Addr())
	for _, dest := range []string{"127.0.0.1", "0.0.0.0", "[::ffff:127.0.0.1]", "[::ffff:0.0.0.0]", "127.0.0.5"} {
		_, err := s.dialOut(context.Background(), net.JoinHostPort(trimBrackets(dest), strconv.Itoa(port)))
		if !errors.Is(err, errSelf) {
			t.Errorf("dialOut %s:%d: %v, want errSelf", dest, port, err)
		}
	}
	// The connected check alone: a listener the set knows only as a
	// public address on this port, yet the connection to loopback lands
	// on the host on that port.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other := &selfSet{interfaceAddrs: func() ([]net.Addr, error) { return nil, nil }}
	other.add(&net.TCPAddr{IP: net.IPv4zero, Port: port})
	if !other.connectedToSelf(c) {
		t.Error("a connection to agentg's own port on this host is not self once connected")
	}
	unrelated := &selfSet{}
	unrelated.add(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
	if unrelated.connectedToSelf(c) {
		t.Error("a connection to another port is self")
	}
	// Accepted in order: the first connection the listener saw is the
	// test's own, dialed after every dialOut returned.
	if first := <-accepted; first != c.LocalAddr().String() {
		t.Errorf("the listener accepted %s before the test's own connection: dialOut reached it", first)
	}
}

func trimBrackets(s string) string {
	if len(s) > 1 && s[0] == '[' {
		return s[1 : len(s)-1]
	}
	return s
}
