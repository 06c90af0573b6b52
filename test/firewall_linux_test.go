//go:build linux

package test

// The firewall agentg netsetup drives in the transparent tests: nftables,
// or iptables (iptables-nft) with nft hidden from netsetup's PATH, which
// is the machine the fallback is for. Each runs the same end-to-end test.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type firewall struct {
	name string
	// path is the PATH agentg netsetup runs with; "" for the test's own.
	path string
	// iface is how the printed rules match an interface.
	iface func(name string) string
	// installed lists the rules in a namespace, as the tool shows them;
	// leftover lists any that are there at all.
	installed, leftover func(tp *topo, ns string) string
}

// nftFirewall skips unless nft is installed and the kernel runs its NAT.
func nftFirewall(t *testing.T) firewall {
	t.Helper()
	probeFirewall(t, "nft", "nftables", []string{"nft", "-f", "-"},
		"table inet p { chain c { type nat hook prerouting priority dstnat; tcp dport 1 redirect to :2; }; }")
	return firewall{name: "nft",
		iface: func(n string) string { return `iifname "` + n + `"` },
		installed: func(tp *topo, ns string) string {
			return tp.exec(ns, "nft", "list", "ruleset")
		},
		leftover: func(tp *topo, ns string) string {
			return strings.TrimSpace(tp.exec(ns, "nft", "list", "ruleset"))
		}}
}

// iptablesFirewall skips unless iptables is installed and the kernel runs
// its NAT; netsetup then runs with a PATH where iptables is and nft is not.
func iptablesFirewall(t *testing.T) firewall {
	t.Helper()
	tools := []string{"ip", "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the iptables fallback tests need %s (iptables; scripts/test.sh installs it)", tool)
		}
	}
	probeFirewall(t, "iptables-restore", "iptables", []string{"iptables-restore", "--noflush"},
		"*nat\n-A PREROUTING -p tcp --dport 1 -j REDIRECT --to-ports 2\nCOMMIT\n")
	probeFirewall(t, "ip6tables-restore", "iptables", []string{"ip6tables-restore", "--noflush"},
		"*nat\n-A PREROUTING -p tcp --dport 1 -j REDIRECT --to-ports 2\nCOMMIT\n")
	dir := t.TempDir()
	for _, tool := range tools {
		p, _ := exec.LookPath(tool)
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(tp *topo, ns string) string {
		return tp.exec(ns, "iptables-save") + tp.exec(ns, "ip6tables-save")
	}
	return firewall{name: "iptables", path: dir,
		iface:     func(n string) string { return "-i " + n + " " },
		installed: list,
		leftover: func(tp *topo, ns string) string {
			var left []string
			for _, l := range strings.Split(list(tp, ns), "\n") {
				if strings.HasPrefix(l, "-A") || strings.Contains(l, "agentg") {
					left = append(left, l)
				}
			}
			if rs, err := tp.try(ns, "nft", "list", "tables"); err == nil && strings.Contains(rs, "agentg") {
				left = append(left, rs)
			}
			return strings.Join(left, "\n")
		}}
}

// probeFirewall skips unless script loads with cmd in a fresh namespace.
func probeFirewall(t *testing.T, tool, pkg string, cmd []string, script string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("transparent mode tests need %s (%s; scripts/test.sh installs it)", tool, pkg)
	}
	probe := fmt.Sprintf("agfw%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", probe).Run()
	c := exec.Command("ip", append([]string{"netns", "exec", probe}, cmd...)...)
	c.Stdin = strings.NewReader(script)
	if out, err := c.CombinedOutput(); err != nil {
		t.Skipf("the kernel cannot run %s NAT rules (modules missing?): %v: %s", tool, err, out)
	}
}
