package netsetup

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRulesetRefuses(t *testing.T) {
	tp := netip.MustParseAddrPort("0.0.0.0:15001")
	lo := netip.MustParseAddrPort("127.0.0.1:15001")
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"nothing", Config{Transparent: tp}, "nothing to redirect"},
		{"mixed", Config{Ifaces: []string{"veth0"}, UIDs: []uint32{1000}, Transparent: tp}, "separate tables"},
		{"loopback from an interface", Config{Ifaces: []string{"veth0"}, Transparent: lo}, "cannot be redirected to loopback"},
		{"local to another address", Config{UIDs: []uint32{1}, Transparent: netip.MustParseAddrPort("10.0.0.1:1")}, "redirected to loopback"},
		{"no port", Config{Ifaces: []string{"veth0"}}, "ip:port"},
		{"iface name", Config{Ifaces: []string{`x" accept; #`}, Transparent: tp}, "not a Linux interface name"},
		{"cgroup escape", Config{Cgroups: []string{"../x"}, Transparent: lo}, "cgroup path"},
		{"cgroup quote", Config{Cgroups: []string{`a"b`}, Transparent: lo}, "cgroup path"},
		{"table", Config{Ifaces: []string{"veth0"}, Transparent: tp, Table: "a b"}, "table name"},
	}
	for _, tt := range tests {
		if _, err := Ruleset(tt.c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestRulesetShapes(t *testing.T) {
	tests := []struct {
		name      string
		c         Config
		want, not []string
	}{
		{"interface", Config{Ifaces: []string{"veth0", "br0"}, Transparent: netip.MustParseAddrPort("0.0.0.0:15001"), DNS: netip.MustParseAddrPort("0.0.0.0:5353")},
			[]string{`iifname { "veth0", "br0" } meta l4proto { tcp, udp } th dport 53 redirect to :5353`,
				`iifname { "veth0", "br0" } meta l4proto tcp redirect to :15001`,
				"hook forward", `iifname { "veth0", "br0" } drop`, `meta l4proto udp drop`, "delete table inet agentg"},
			[]string{"meta mark", "output"}},
		{"one address", Config{Ifaces: []string{"veth0"}, Transparent: netip.MustParseAddrPort("10.1.1.1:15001")},
			[]string{"meta nfproto ipv4 meta l4proto tcp dnat ip to 10.1.1.1:15001"}, []string{"dport 53"}},
		{"uid", Config{UIDs: []uint32{1000}, Transparent: netip.MustParseAddrPort("127.0.0.1:15001"), Mark: DefaultMark, Table: "t1"},
			[]string{"hook output", "meta mark 0x4147 return", "meta skuid 1000 meta l4proto tcp redirect to :15001",
				"meta skuid 1000 meta l4proto udp drop", "table inet t1 {"}, []string{"prerouting"}},
		{"cgroup", Config{Cgroups: []string{"/system.slice/agent.service/"}, Transparent: netip.MustParseAddrPort("[::1]:15001")},
			[]string{`socket cgroupv2 level 2 "system.slice/agent.service" meta l4proto tcp redirect to :15001`}, []string{"meta mark"}},
	}
	for _, tt := range tests {
		rs, err := Ruleset(tt.c)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(rs, w) {
				t.Errorf("%s: no %q in\n%s", tt.name, w, rs)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(rs, n) {
				t.Errorf("%s: %q in\n%s", tt.name, n, rs)
			}
		}
		// The mark rule comes before any redirect.
		if i, j := strings.Index(rs, "meta mark"), strings.Index(rs, "redirect to :"); i >= 0 && i > j {
			t.Errorf("%s: the mark rule is after a redirect", tt.name)
		}
	}
}

// nft itself accepts what Ruleset writes: checked (nft -c) inside a fresh
// network namespace, so nothing is installed anywhere.
func TestRulesetNftAccepts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nft -c needs root")
	}
	for _, tool := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	ns := fmt.Sprintf("agnetsetup%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("no network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, c := range []Config{
		{Ifaces: []string{"veth0"}, Transparent: netip.MustParseAddrPort("[::]:15001"), DNS: netip.MustParseAddrPort("10.0.0.1:53")},
		{Ifaces: []string{"veth0"}, Transparent: netip.MustParseAddrPort("[fd00::1]:15001")},
		{UIDs: []uint32{0, 1000}, Transparent: netip.MustParseAddrPort("127.0.0.1:15001"), DNS: netip.MustParseAddrPort("127.0.0.1:5353"), Mark: DefaultMark},
	} {
		rs, err := Ruleset(c)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(rs)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nft -c refuses:\n%s\n%v: %s", rs, err, out)
		}
	}
}
