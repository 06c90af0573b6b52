package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/rules"
)

// checkDNS explains what the DNS filter does with one question,
// NAME[/TYPE] (type A when none is given): the guards that need no
// counting, then the name's decision by the host rules (allowed on some
// port, never denied for a port list), and how a denied name is answered.
// The counting guards (subdomains, query rate) depend on traffic, so
// their limits in force are printed instead.
func checkDNS(tw io.Writer, eng *rules.Engine, agent, arg string) bool {
	name, typ, _ := strings.Cut(arg, "/")
	qtype := dns.TypeA
	if typ != "" {
		t, ok := dns.StringToType[strings.ToUpper(typ)]
		if !ok {
			fmt.Fprintf(tw, "dns %s\tinvalid\tunknown query type %q\n", arg, typ)
			return false
		}
		qtype = t
	}
	if name == "" {
		fmt.Fprintf(tw, "dns %s\tinvalid\twant NAME or NAME/TYPE\n", arg)
		return false
	}
	label := "dns " + name + " " + dns.TypeToString[qtype]
	d := eng.DNS().Explain(rules.DNSQuery{Agent: agent, Name: name, Type: qtype})
	set := eng.DNS()
	answer := "resolve"
	if d.Outcome() != "allow" {
		answer = set.Block.String()
		if d.Report {
			answer = "resolve (report mode; would answer " + set.Block.String() + ")"
		}
	}
	fmt.Fprintf(tw, "%s\t%s\trule=%s\tsource=%s\tanswer=%s\t%s\n", label, d.Outcome(), d.Rule, d.Source, answer, d.Reason)
	if set.Subdomains > 0 {
		fmt.Fprintf(tw, "  guard %s\tlimit=%d/%s\tper=agent,registered-domain\tsource=%s\n", rules.RuleDNSSubdomains, set.Subdomains, set.SubdomainsWindow, set.Source)
	}
	if set.QueryRate > 0 {
		fmt.Fprintf(tw, "  guard %s\tlimit=%g/s\tburst=%d\tper=agent\tsource=%s\n", rules.RuleDNSQueryRate, set.QueryRate, set.QueryBurst, set.Source)
	}
	fmt.Fprintf(tw, "  memory dns.memory\tlimit=%s\tcache=%s (max_entries %d)\tbindings=%s\tsource=%s\n",
		mib(set.Memory), mib(set.Cache.MaxBytes), set.Cache.MaxEntries, mib(set.BindingsBytes), set.Source)
	return true
}

// mib writes a byte count as the policy would: whole MiB or KiB when it
// is one, else bytes.
func mib(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
