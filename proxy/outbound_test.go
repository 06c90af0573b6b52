package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

// The dialer of checked addresses, over real sockets: it dials only the
// addresses a flow's decision kept, on the flow's port, never agentg's own
// listener, and keeps each open connection in the outbound set (the
// transparent door's loop check) until it is closed.
func TestCheckedDialer(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	self, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	upAP := netip.MustParseAddrPort(up.Addr().String())
	selfAP := netip.MustParseAddrPort(self.Addr().String())
	accepted := make(chan string, 16)
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	selfAccepted := make(chan string, 16)
	go func() {
		for {
			c, err := self.Accept()
			if err != nil {
				return
			}
			selfAccepted <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	d := &checkedDialer{timeout: 2 * time.Second}
	d.addSelf(self.Addr())
	// Nothing listens on the upstream's port at 127.0.0.2: it refuses.
	refusing := netip.MustParseAddr("127.0.0.2")

	tests := []struct {
		name    string
		flow    *flow // nil: no flow in the context
		address string
		dialed  string // the address the flow records; "" when refused
		errSelf bool
		rule    string
	}{
		{"no flow", nil, up.Addr().String(), "", false, ""},
		{"no checked addresses", &flow{host: hostAt(upAP)}, up.Addr().String(), "", false, ""},
		{"another port than checked", &flow{host: hostAt(upAP), ips: []netip.Addr{upAP.Addr()}}, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(upAP.Port())+1)), "", false, ""},
		{"the checked address", &flow{host: hostAt(upAP), ips: []netip.Addr{upAP.Addr()}}, up.Addr().String(), "127.0.0.1", false, ""},
		{"the checked name's address, not the name", &flow{host: addr.Host{Name: "up.test", Port: upAP.Port()}, ips: []netip.Addr{upAP.Addr()}}, "up.test:" + strconv.Itoa(int(upAP.Port())), "127.0.0.1", false, ""},
		{"agentg itself", &flow{host: hostAt(selfAP), ips: []netip.Addr{selfAP.Addr()}}, self.Addr().String(), "", true, rules.RuleSelf},
		{"only a refusing address", &flow{host: addr.Host{Name: "two.test", Port: upAP.Port()}, ips: []netip.Addr{refusing}}, "two.test:" + strconv.Itoa(int(upAP.Port())), "", false, ""},
		{"the next address after a refusing one", &flow{host: addr.Host{Name: "two.test", Port: upAP.Port()}, ips: []netip.Addr{refusing, upAP.Addr()}}, "two.test:" + strconv.Itoa(int(upAP.Port())), "127.0.0.1", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.flow != nil {
				ctx = withFlow(ctx, tt.flow)
			}
			c, err := d.dialChecked(ctx, "tcp", tt.address)
			if tt.dialed == "" {
				if err == nil {
					c.Close()
					t.Fatalf("dialed %s, want a refusal", tt.address)
				}
				if tt.errSelf != errors.Is(err, errSelf) {
					t.Fatalf("error %v; errSelf %v, want %v", err, errors.Is(err, errSelf), tt.errSelf)
				}
				if tt.rule != "" && tt.flow.decision.Rule != tt.rule {
					t.Fatalf("flow decision %q, want %q", tt.flow.decision.Rule, tt.rule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			local := netip.MustParseAddrPort(c.LocalAddr().String())
			if !d.out.has(local) {
				t.Error("an open outbound connection is not in the outbound set")
			}
			if got := <-accepted; got != c.LocalAddr().String() {
				t.Errorf("the upstream accepted %s, want this dial's %s", got, c.LocalAddr())
			}
			if tt.flow.dialed.String() != tt.dialed {
				t.Errorf("flow dialed %s, want %s", tt.flow.dialed, tt.dialed)
			}
			c.Close()
			if d.out.has(local) {
				t.Error("a closed outbound connection is still in the outbound set")
			}
		})
	}
	// Nothing ever reached agentg's own listener: a marker dialed now is
	// the first connection it sees.
	m, err := net.Dial("tcp", self.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if first := <-selfAccepted; first != m.LocalAddr().String() {
		t.Errorf("agentg's own listener accepted %s before the marker %s: the dialer reached it", first, m.LocalAddr())
	}
}

func hostAt(ap netip.AddrPort) addr.Host {
	return addr.Host{Name: ap.Addr().String(), IP: ap.Addr(), Port: ap.Port()}
}
