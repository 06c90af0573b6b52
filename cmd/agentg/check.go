package main

import (
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "[--agent NAME] [--port N] POLICY [HOST[:PORT]...]", stderr)
	agent := fs.String("agent", "", "decide as this agent")
	port := fs.Uint("port", 443, "port for hosts given without one")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || *port == 0 || *port > 65535 {
		fs.Usage()
		return errUsage
	}
	path := fs.Arg(0)
	eng, _, err := loadPolicy(path)
	if err != nil {
		return err
	}
	st := eng.Stats()
	fmt.Fprintf(stdout, "policy %s: ok: %d host patterns, %d CIDR rules, %d http rules, %d intercept and %d passthrough patterns (intercept all: %v)\n",
		path, st.HostRules, st.CIDRRules, st.HTTPRules, st.InterceptRules, st.PassthroughRules, st.InterceptAll)
	for _, l := range st.Lists {
		fmt.Fprintf(stdout, "  list %s (%s): %d entries, %d skipped, %d duplicates\n", l.Path, l.Format, l.Entries, l.Skipped, l.Duplicates)
	}
	for _, w := range eng.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	bad := 0
	for _, arg := range fs.Args()[1:] {
		h, err := addr.ParseAuthority(arg, uint16(*port))
		if err != nil {
			fmt.Fprintf(tw, "%s\tinvalid\t%v\n", arg, err)
			bad++
			continue
		}
		d := eng.Host(*agent, h)
		// A name's addresses are checked too when the static table knows
		// them, as the proxy checks them; DNS is not consulted here.
		var ips []netip.Addr
		known := h.IsIP()
		if known {
			ips = []netip.Addr{h.IP}
		} else {
			ips, known = eng.Resolve(h.Name)
		}
		if known {
			d, _ = eng.Addresses(d, rules.Dest{Agent: *agent, Host: h, IPs: ips})
		}
		tls := "tunnel"
		switch t := eng.Tunnel(*agent, h); {
		case t.Intercept:
			tls = "intercept=" + t.Rule
		case t.AllowECH:
			tls = "tunnel,ech=allow"
		}
		fmt.Fprintf(tw, "%s\t%s\trule=%s\tsource=%s\t%s\t%s\n", h, d.Outcome(), d.Rule, d.Source, tls, d.Reason)
	}
	if bad > 0 {
		tw.Flush()
		return fmt.Errorf("%d host(s) could not be parsed", bad)
	}
	return nil
}
