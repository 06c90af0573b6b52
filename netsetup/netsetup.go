// Package netsetup generates the firewall rules that send an agent's
// traffic to agentg's transparent listener: one nftables table that agentg
// owns (inet agentg by default), so that applying it replaces exactly what
// an earlier run installed and removing it leaves nothing behind.
//
// Two shapes, as Config says:
//   - a network namespace or container whose default route goes through
//     this host (Netns, Iface): traffic arriving on its interfaces is
//     redirected in prerouting; nothing from them is forwarded;
//   - agents on this host (UID, Cgroup): their sockets' traffic is
//     redirected in output.
//
// In both, TCP goes to the transparent listener, DNS (UDP and TCP 53) to
// the DNS filter, and every other UDP packet is dropped: QUIC (UDP 443)
// cannot be read for a name or passed through a TCP relay, so dropping it
// makes clients fall back to TCP, where agentg decides. In output mode
// packets carrying agentg's mark (SO_MARK on its own sockets) are left
// alone first, so agentg's connections to upstreams are never redirected
// back to it.
//
// Where nft is missing, the same rules take the iptables form (see
// iptables.go): chains agentg owns in each family, applied and removed
// exactly as the table is.
//
// The contract: Ruleset (and IptablesScript) is pure (the same Config, the same text) and
// refuses a Config it cannot express correctly rather than emitting rules
// that would leak or loop.
package netsetup

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// DefaultTable is the name of the table agentg owns.
const DefaultTable = "agentg"

// DefaultMark is the mark agentg puts on its own sockets unless told
// otherwise (agentg serve --mark); "AG" in ASCII.
const DefaultMark = 0x4147

// Config says what to redirect and where to.
type Config struct {
	// Ifaces are interfaces whose incoming traffic is redirected (a
	// namespace's or container's host-side veth, a bridge). UIDs and
	// Cgroups are local senders whose traffic is redirected (cgroup v2
	// paths relative to the cgroup root, e.g. "system.slice/agent.service").
	// At least one of them; interfaces and local senders may not be
	// mixed in one table.
	Ifaces  []string
	UIDs    []uint32
	Cgroups []string

	// Transparent is where agentg's transparent listener listens
	// (--transparent); DNS where its DNS filter does (--dns), or invalid
	// to redirect no DNS (it is then dropped like all other UDP, and TCP
	// 53 is redirected like any TCP).
	Transparent netip.AddrPort
	DNS         netip.AddrPort

	// Mark is agentg's own mark (0: none). It is required for UIDs and
	// Cgroups unless agentg runs as a uid and in a cgroup not listed.
	Mark uint32

	// Table is the table's name; DefaultTable when empty.
	Table string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,64}$`)
var cgroupRE = regexp.MustCompile(`^[A-Za-z0-9_.@:/-]+$`)

func (c *Config) table() string {
	if c.Table == "" {
		return DefaultTable
	}
	return c.Table
}

func (c *Config) local() bool { return len(c.UIDs) > 0 || len(c.Cgroups) > 0 }

// Validate reports what in c cannot be turned into correct rules.
func (c *Config) Validate() error {
	if !nameRE.MatchString(c.table()) {
		return fmt.Errorf("table name %q: letters, digits and _.@:- only", c.table())
	}
	switch {
	case len(c.Ifaces) == 0 && !c.local():
		return errors.New("nothing to redirect: give an interface (or namespace), a uid or a cgroup")
	case len(c.Ifaces) > 0 && c.local():
		return errors.New("interfaces and local uids/cgroups need separate tables (--table)")
	}
	for _, i := range c.Ifaces {
		if len(i) > 15 || !nameRE.MatchString(i) {
			return fmt.Errorf("interface name %q is not a Linux interface name", i)
		}
	}
	for _, g := range c.Cgroups {
		if strings.Contains(g, "..") || !cgroupRE.MatchString(strings.Trim(g, "/")) {
			return fmt.Errorf("cgroup path %q: a path relative to the cgroup v2 root", g)
		}
	}
	if err := c.checkTarget("transparent", c.Transparent); err != nil {
		return err
	}
	if c.DNS.IsValid() {
		if err := c.checkTarget("dns", c.DNS); err != nil {
			return err
		}
	}
	return nil
}

// checkTarget refuses a listening address a redirect cannot reach.
func (c *Config) checkTarget(what string, ap netip.AddrPort) error {
	if !ap.IsValid() || ap.Port() == 0 {
		return fmt.Errorf("--%s: need the address agentg listens on, ip:port", what)
	}
	ip := ap.Addr()
	if len(c.Ifaces) > 0 && ip.IsLoopback() {
		// A packet from an interface redirected to 127.0.0.1 is
		// dropped as a martian unless route_localnet is set.
		return fmt.Errorf("--%s %s: traffic from an interface cannot be redirected to loopback; let agentg listen on 0.0.0.0, [::] or this host's address on the interface", what, ap)
	}
	if c.local() && !ip.IsLoopback() && !ip.IsUnspecified() {
		return fmt.Errorf("--%s %s: local traffic is redirected to loopback; let agentg listen on 127.0.0.1, [::1], 0.0.0.0 or [::]", what, ap)
	}
	return nil
}

// to is the verdict that sends a matched packet to ap: a redirect to the
// port when agentg listens on every address (or loopback, for local
// traffic), else a DNAT to the one address, for its family only.
func to(ap netip.AddrPort) (family, verdict string) {
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() || ip.IsLoopback() {
		return "", fmt.Sprintf("redirect to :%d", ap.Port())
	}
	if ip.Is4() {
		return "meta nfproto ipv4 ", fmt.Sprintf("dnat ip to %s", netip.AddrPortFrom(ip, ap.Port()))
	}
	return "meta nfproto ipv6 ", fmt.Sprintf("dnat ip6 to %s", ap)
}

// Ruleset is the nftables script that installs c's table, replacing any
// table of that name atomically (nft -f applies a script as one
// transaction).
func Ruleset(c Config) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	t := c.table()
	fmt.Fprintf(&b, "# agentg netsetup: redirect to agentg's transparent listener %s", c.Transparent)
	if c.DNS.IsValid() {
		fmt.Fprintf(&b, " and DNS filter %s", c.DNS)
	}
	b.WriteString(".\n# Remove with: agentg netsetup --remove")
	if c.Table != "" {
		fmt.Fprintf(&b, " --table %s", t)
	}
	fmt.Fprintf(&b, "  (or: nft delete table inet %s)\n", t)
	// Declaring the table first makes the delete succeed on a first run.
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n", t, t, t)
	if c.local() {
		writeLocal(&b, c)
	} else {
		writeIfaces(&b, c)
	}
	b.WriteString("}\n")
	return b.String(), nil
}

func writeIfaces(b *strings.Builder, c Config) {
	m := "iifname " + set(quoted(c.Ifaces))
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	if c.DNS.IsValid() {
		fam, v := to(c.DNS)
		fmt.Fprintf(b, "\t\t%s %smeta l4proto { tcp, udp } th dport 53 %s\n", m, fam, v)
	}
	fam, v := to(c.Transparent)
	fmt.Fprintf(b, "\t\t%s %smeta l4proto tcp %s\n", m, fam, v)
	b.WriteString("\t}\n")
	// Nothing from the agent is routed past agentg: TCP and DNS were
	// redirected to it above; what is left (other UDP, QUIC among it,
	// and TCP of a family agentg does not listen on) is dropped.
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	fmt.Fprintf(b, "\t\t%s drop\n\t}\n", m)
	// UDP to this host's own addresses that was not redirected (QUIC to
	// the gateway) is dropped too; what was redirected is agentg's.
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	fmt.Fprintf(b, "\t\t%s ct status dnat accept\n", m)
	fmt.Fprintf(b, "\t\t%s meta l4proto udp drop\n\t}\n", m)
}

func writeLocal(b *strings.Builder, c Config) {
	var who []string
	if len(c.UIDs) > 0 {
		var us []string
		for _, u := range c.UIDs {
			us = append(us, fmt.Sprint(u))
		}
		who = append(who, "meta skuid "+set(us))
	}
	for _, g := range c.Cgroups {
		g = strings.Trim(g, "/")
		who = append(who, fmt.Sprintf("socket cgroupv2 level %d %q", strings.Count(g, "/")+1, g))
	}
	mark := ""
	if c.Mark != 0 {
		mark = fmt.Sprintf("\t\tmeta mark %#x return\n", c.Mark)
	}
	b.WriteString("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n")
	b.WriteString(mark)
	for _, w := range who {
		if c.DNS.IsValid() {
			fam, v := to(c.DNS)
			fmt.Fprintf(b, "\t\t%s %smeta l4proto { tcp, udp } th dport 53 %s\n", w, fam, v)
		}
		fam, v := to(c.Transparent)
		fmt.Fprintf(b, "\t\t%s %smeta l4proto tcp %s\n", w, fam, v)
	}
	b.WriteString("\t}\n")
	// After NAT: what was redirected is agentg's; other UDP is dropped.
	b.WriteString("\tchain output_filter {\n\t\ttype filter hook output priority filter; policy accept;\n")
	b.WriteString(mark)
	for _, w := range who {
		fmt.Fprintf(b, "\t\t%s ct status dnat accept\n", w)
		fmt.Fprintf(b, "\t\t%s meta l4proto udp drop\n", w)
	}
	b.WriteString("\t}\n")
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func set(ss []string) string {
	if len(ss) == 1 {
		return ss[0]
	}
	return "{ " + strings.Join(ss, ", ") + " }"
}
