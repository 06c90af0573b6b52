//go:build linux

package test

// A network topology of the test's own, for transparent mode: three
// network namespaces joined by veth pairs, nothing of which touches the
// machine's own network.
//
//	agent (10.77.N.2, default via .1) ── router (10.77.N.1 | 11.77.N.1) ── upstream (11.77.N.2-6)
//	      (fd77:a:N::2, via ::1)               (fd77:a:N::1 | fd77:b:N::1)          (fd77:b:N::2-6)
//
// agentg runs in the router namespace, the rules agentg netsetup installs
// live there, and the upstream IPv4 addresses are public ones (so that no
// CIDR rule is needed to dial them) that exist only inside the upstream
// namespace. The IPv6 leg is unique local addresses (a policy opens them
// by CIDR rule), in namespaces without duplicate address detection so
// that every address is usable at once. The test process serves upstreams and runs Go clients in a
// namespace by creating their sockets on a thread that has entered it.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

type topo struct {
	t                   *testing.T
	agent, router, up   string // namespace names
	agentIP, routerIP   netip.Addr
	agentIP6, routerIP6 netip.Addr
	n                   int
	agentIf, routerAIf  string
}

var topoSeq atomic.Int32

// upIP is the upstream namespace's address 11.77.N.i.
func (tp *topo) upIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{11, 77, byte(tp.n), byte(i)})
}

// upIP6 is the upstream namespace's address fd77:b:N::i.
func (tp *topo) upIP6(i int) netip.Addr { return ula(0xb, tp.n, i) }

// ula is fd77:<link>:n::i.
func ula(link byte, n, i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfd, 0x77, 0, link, 0, byte(n), 14: 0, 15: byte(i)})
}

// needNetns skips unless the test can build namespaces (the firewall
// tools are the firewall's to check).
func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("transparent mode tests need root (network namespaces, firewall rules)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("transparent mode tests need ip (iproute2; scripts/test.sh installs it)")
	}
	probe := fmt.Sprintf("agprobe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	exec.Command("ip", "netns", "del", probe).Run()
}

// newTopo builds the topology; cleanups remove every namespace (and with
// them every interface and rule in them).
func newTopo(t *testing.T) *topo {
	t.Helper()
	needNetns(t)
	n := int(topoSeq.Add(1)) + os.Getpid()%100*2
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, n)
	tp := &topo{t: t, n: n % 250, agent: "aga" + id, router: "agr" + id, up: "agu" + id}
	tp.n = tp.n + 1
	tp.agentIP = netip.AddrFrom4([4]byte{10, 77, byte(tp.n), 2})
	tp.routerIP = netip.AddrFrom4([4]byte{10, 77, byte(tp.n), 1})
	tp.agentIP6, tp.routerIP6 = ula(0xa, tp.n, 2), ula(0xa, tp.n, 1)
	for _, ns := range []string{tp.agent, tp.router, tp.up} {
		tp.ip("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		tp.ip("-n", ns, "link", "set", "lo", "up")
		// No duplicate address detection on the interfaces to come,
		// link-local addresses included: until it is over the kernel
		// cannot send neighbour solicitations from them, and the first
		// IPv6 connection would wait a SYN retransmission for it.
		tp.exec(ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
	}
	tp.agentIf, tp.routerAIf = "a"+id, "ra"+id
	ru, uu := "ru"+id, "u"+id
	tp.ip("link", "add", "name", tp.agentIf, "netns", tp.agent, "type", "veth", "peer", "name", tp.routerAIf, "netns", tp.router)
	tp.ip("link", "add", "name", ru, "netns", tp.router, "type", "veth", "peer", "name", uu, "netns", tp.up)
	pfx := func(a netip.Addr) string { return a.String() + "/24" }
	tp.ip("-n", tp.agent, "addr", "add", pfx(tp.agentIP), "dev", tp.agentIf)
	tp.ip("-n", tp.router, "addr", "add", pfx(tp.routerIP), "dev", tp.routerAIf)
	tp.ip("-n", tp.router, "addr", "add", pfx(tp.upIP(1)), "dev", ru)
	for i := 2; i <= 6; i++ {
		tp.ip("-n", tp.up, "addr", "add", pfx(tp.upIP(i)), "dev", uu)
	}
	pfx6 := func(a netip.Addr) string { return a.String() + "/64" }
	tp.ip("-n", tp.agent, "addr", "add", pfx6(tp.agentIP6), "dev", tp.agentIf, "nodad")
	tp.ip("-n", tp.router, "addr", "add", pfx6(tp.routerIP6), "dev", tp.routerAIf, "nodad")
	tp.ip("-n", tp.router, "addr", "add", pfx6(tp.upIP6(1)), "dev", ru, "nodad")
	for i := 2; i <= 6; i++ {
		tp.ip("-n", tp.up, "addr", "add", pfx6(tp.upIP6(i)), "dev", uu, "nodad")
	}
	for ns, ifs := range map[string][]string{tp.agent: {tp.agentIf}, tp.router: {tp.routerAIf, ru}, tp.up: {uu}} {
		for _, i := range ifs {
			tp.ip("-n", ns, "link", "set", i, "up")
		}
	}
	tp.ip("-n", tp.agent, "route", "add", "default", "via", tp.routerIP.String())
	tp.ip("-n", tp.up, "route", "add", "default", "via", tp.upIP(1).String())
	tp.ip("-n", tp.agent, "-6", "route", "add", "default", "via", tp.routerIP6.String())
	tp.ip("-n", tp.up, "-6", "route", "add", "default", "via", tp.upIP6(1).String())
	tp.exec(tp.router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return tp
}

func (tp *topo) ip(args ...string) {
	tp.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tp.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// exec runs a command in namespace ns and returns its combined output.
func (tp *topo) exec(ns string, args ...string) string {
	tp.t.Helper()
	out, err := tp.try(ns, args...)
	if err != nil {
		tp.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

func (tp *topo) try(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// inNetns runs f on a thread that is in namespace ns: the sockets f
// creates belong to ns for good.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread goes back to its namespace, or it dies with the
		// goroutine (never unlocked): no other goroutine runs in ns.
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// listen opens a listener in ns.
func (tp *topo) listen(ns, network, address string) net.Listener {
	tp.t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	}); err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() { ln.Close() })
	return ln
}

func (tp *topo) listenUDP(ns, address string) *net.UDPConn {
	tp.t.Helper()
	var pc net.PacketConn
	if err := inNetns(ns, func() (err error) {
		pc, err = net.ListenPacket("udp", address)
		return err
	}); err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

// dialer dials from ns; names is the client's own resolution of host
// names (a client that resolved them itself).
func (tp *topo) dialer(ns string, names map[string]netip.Addr) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if ip, ok := names[host]; ok {
			address = net.JoinHostPort(ip.String(), port)
		}
		var c net.Conn
		err = inNetns(ns, func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, address)
			return err
		})
		return c, err
	}
}
