package netsetup

import (
	"fmt"
	"net/netip"
	"strings"
)

// The iptables form of the rules, for hosts with iptables (iptables-nft)
// and no nft command. The same rules as Ruleset, for each family
// (iptables and ip6tables: an inet table covers both, iptables does not),
// in chains agentg owns: one per hook, named <table>-<hook>
// (agentg-prerouting in nat, agentg-forward and agentg-input in filter;
// agentg-output in both nat and filter for local senders), each entered
// by one jump at the top of its built-in chain. Applying replaces exactly
// those chains and jumps, removing deletes exactly them; every other rule
// is left as it was.
//
// Where nft's rules accept (what was redirected, agentg's own marked
// traffic), these return: an accept in agentg's nft table ends only its
// own chain, and a RETURN likewise leaves the verdict to the rest of the
// built-in chain.

// Families of the iptables form.
const (
	familyIPv4 = "iptables"
	familyIPv6 = "ip6tables"
)

// iptChain is one chain agentg owns: its table, the built-in chain that
// jumps to it, and its rules (the arguments after -A name).
type iptChain struct {
	table, hook, name string
	rules             []string
}

// iptFamily is the rules of one family, named by its command.
type iptFamily struct {
	cmd    string
	chains []iptChain
}

// hooks are the built-in chains agentg's chains hang off, by table.
var hooks = []struct{ table, hook string }{
	{"nat", "PREROUTING"}, {"nat", "OUTPUT"}, {"filter", "FORWARD"}, {"filter", "INPUT"}, {"filter", "OUTPUT"},
}

// chainName is the chain agentg owns under hook in table t.
func chainName(t, hook string) string { return t + "-" + strings.ToLower(hook) }

// maxChainName is iptables' limit on a chain name (XT_EXTENSION_MAXNAMELEN
// less its NUL).
const maxChainName = 28

// checkIptTable refuses a table name that cannot prefix iptables chains.
func checkIptTable(t string) error {
	if !nameRE.MatchString(t) || strings.HasPrefix(t, "-") || strings.HasPrefix(t, "!") {
		return fmt.Errorf("table name %q: letters, digits and _.@:- only, not starting with - (it names iptables chains)", t)
	}
	if n := len(chainName(t, "PREROUTING")); n > maxChainName {
		return fmt.Errorf("table name %q: at most %d characters under iptables (its chains are named %s)", t, len(t)-(n-maxChainName), chainName(t, "PREROUTING"))
	}
	return nil
}

// iptables is c's rules for both families.
func iptables(c Config) ([]iptFamily, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkIptTable(c.table()); err != nil {
		return nil, err
	}
	var out []iptFamily
	for _, cmd := range []string{familyIPv4, familyIPv6} {
		f := iptFamily{cmd: cmd}
		if c.local() {
			f.chains = localChains(c, cmd == familyIPv6)
		} else {
			f.chains = ifaceChains(c, cmd == familyIPv6)
		}
		out = append(out, f)
	}
	return out, nil
}

// iptTo is the target that sends a matched packet of the family (v6 or
// not) to ap, like to: a REDIRECT to the port, or a DNAT to the one
// address; "" when ap is an address of the other family, whose packets
// are then not redirected (and, from an interface, dropped).
func iptTo(ap netip.AddrPort, v6 bool) string {
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() || ip.IsLoopback() {
		return fmt.Sprintf("-j REDIRECT --to-ports %d", ap.Port())
	}
	if ip.Is6() != v6 {
		return ""
	}
	return "-j DNAT --to-destination " + netip.AddrPortFrom(ip, ap.Port()).String()
}

// redirects are the rules that send who's TCP and DNS to agentg.
func redirects(c Config, who string, v6 bool) []string {
	var out []string
	if c.DNS.IsValid() {
		if v := iptTo(c.DNS, v6); v != "" {
			out = append(out, who+"-p udp --dport 53 "+v, who+"-p tcp --dport 53 "+v)
		}
	}
	if v := iptTo(c.Transparent, v6); v != "" {
		out = append(out, who+"-p tcp "+v)
	}
	return out
}

func ifaceChains(c Config, v6 bool) []iptChain {
	t := c.table()
	pre := iptChain{table: "nat", hook: "PREROUTING", name: chainName(t, "PREROUTING")}
	fwd := iptChain{table: "filter", hook: "FORWARD", name: chainName(t, "FORWARD")}
	in := iptChain{table: "filter", hook: "INPUT", name: chainName(t, "INPUT")}
	for _, i := range c.Ifaces {
		m := "-i " + i + " "
		pre.rules = append(pre.rules, redirects(c, m, v6)...)
		fwd.rules = append(fwd.rules, m+"-j DROP")
		in.rules = append(in.rules, m+"-m conntrack --ctstate DNAT -j RETURN", m+"-p udp -j DROP")
	}
	return []iptChain{pre, fwd, in}
}

func localChains(c Config, v6 bool) []iptChain {
	t := c.table()
	var who []string
	for _, u := range c.UIDs {
		who = append(who, fmt.Sprintf("-m owner --uid-owner %d ", u))
	}
	for _, g := range c.Cgroups {
		who = append(who, "-m cgroup --path "+strings.Trim(g, "/")+" ")
	}
	nat := iptChain{table: "nat", hook: "OUTPUT", name: chainName(t, "OUTPUT")}
	filter := iptChain{table: "filter", hook: "OUTPUT", name: chainName(t, "OUTPUT")}
	if c.Mark != 0 {
		m := fmt.Sprintf("-m mark --mark %#x -j RETURN", c.Mark)
		nat.rules = append(nat.rules, m)
		filter.rules = append(filter.rules, m)
	}
	for _, w := range who {
		nat.rules = append(nat.rules, redirects(c, w, v6)...)
		filter.rules = append(filter.rules, w+"-m conntrack --ctstate DNAT -j RETURN", w+"-p udp -j DROP")
	}
	return []iptChain{nat, filter}
}

// iptState is what <family>-save lists of the tables agentg uses: the
// chains of each table, and each table's rules as "chain spec" pairs.
type iptState struct {
	chains map[string]map[string]bool // table → chain → declared
	rules  map[string][][2]string     // table → [chain, spec]
}

// parseSave reads <family>-save output.
func parseSave(out string) iptState {
	st := iptState{chains: map[string]map[string]bool{}, rules: map[string][][2]string{}}
	table := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			st.chains[table] = map[string]bool{}
		case strings.HasPrefix(line, ":") && table != "":
			name, _, _ := strings.Cut(line[1:], " ")
			st.chains[table][name] = true
		case strings.HasPrefix(line, "-A ") && table != "":
			chain, spec, _ := strings.Cut(line[3:], " ")
			st.rules[table] = append(st.rules[table], [2]string{chain, spec})
		}
	}
	return st
}

// jumpsTo lists the rules of table in st whose target is chain.
func (st iptState) jumpsTo(table, chain string) [][2]string {
	var out [][2]string
	for _, r := range st.rules[table] {
		if strings.HasSuffix(" "+r[1], " -j "+chain) || strings.HasSuffix(" "+r[1], " -g "+chain) {
			out = append(out, r)
		}
	}
	return out
}

// restoreScript is the <family>-restore --noflush input that makes the
// chains of f (replacing any of the same names st lists, and the jumps to
// them), deletes the other chains of table t that st lists (an earlier
// run of another shape), and touches nothing else.
func (f iptFamily) restoreScript(t string, st iptState) string {
	var b strings.Builder
	for _, table := range []string{"nat", "filter"} {
		var cs []iptChain
		want := map[string]bool{}
		for _, ch := range f.chains {
			if ch.table == table {
				cs = append(cs, ch)
				want[ch.name] = true
			}
		}
		var stale []string
		for _, n := range st.owned(t, table) {
			if !want[n] {
				stale = append(stale, n)
			}
		}
		if len(cs) == 0 && len(stale) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", table)
		writeDelete(&b, st, table, stale)
		for _, ch := range cs {
			for _, j := range st.jumpsTo(table, ch.name) {
				fmt.Fprintf(&b, "-D %s %s\n", j[0], j[1])
			}
			// Declaring a chain creates it, or (with --noflush) empties
			// the one there is.
			fmt.Fprintf(&b, ":%s - [0:0]\n", ch.name)
			for _, r := range ch.rules {
				fmt.Fprintf(&b, "-A %s %s\n", ch.name, r)
			}
			fmt.Fprintf(&b, "-I %s 1 -j %s\n", ch.hook, ch.name)
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// owned lists the chains of table t owns in table that st lists.
func (st iptState) owned(t, table string) []string {
	var out []string
	for _, h := range hooks {
		if n := chainName(t, h.hook); h.table == table && st.chains[table][n] {
			out = append(out, n)
		}
	}
	return out
}

// writeDelete writes the lines that delete chains names of table, and
// every jump to them first (a chain something jumps to cannot go).
func writeDelete(b *strings.Builder, st iptState, table string, names []string) {
	for _, n := range names {
		for _, j := range st.jumpsTo(table, n) {
			fmt.Fprintf(b, "-D %s %s\n", j[0], j[1])
		}
	}
	for _, n := range names {
		fmt.Fprintf(b, "-F %s\n-X %s\n", n, n)
	}
}

// removeScript is the <family>-restore --noflush input that deletes the
// chains of table t that st lists and every jump to them, or "" when
// there are none.
func removeScript(t string, st iptState) string {
	var b strings.Builder
	for _, table := range []string{"nat", "filter"} {
		names := st.owned(t, table)
		if len(names) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", table)
		writeDelete(&b, st, table, names)
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// IptablesScript is what Ruleset is for nftables, for iptables: a shell
// script that feeds each family's rules to iptables-restore and
// ip6tables-restore --noflush, for a host where agentg's chains are not
// there yet (ApplyIptables replaces them where they are).
func IptablesScript(c Config) (string, error) {
	fams, err := iptables(c)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# agentg netsetup (iptables): redirect to agentg's transparent listener %s", c.Transparent)
	if c.DNS.IsValid() {
		fmt.Fprintf(&b, " and DNS filter %s", c.DNS)
	}
	b.WriteString(".\n# Remove with: agentg netsetup --backend iptables --remove")
	if c.Table != "" {
		fmt.Fprintf(&b, " --table %s", c.table())
	}
	b.WriteString("\n")
	for _, f := range fams {
		fmt.Fprintf(&b, "%s-restore --noflush <<'EOF'\n%sEOF\n", f.cmd, f.restoreScript(c.table(), iptState{}))
	}
	return b.String(), nil
}
