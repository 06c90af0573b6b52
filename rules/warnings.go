package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/agentg/agentg/addr"
)

// Warnings: policies that load but do not do what they seem to. Nothing
// here is on the request path; it asks the engine the same questions the
// proxy will, for representative agents, hosts and ports.

// Warning is one thing about a policy a security team should look at.
type Warning struct {
	// Source is "<file>:<line>" of what the warning is about, or the
	// policy file when it is about the policy as a whole.
	Source string
	Text   string
}

func (w Warning) String() string { return w.Source + ": " + w.Text }

// probeLabel makes a name no rule is written for, standing for "any other
// name" under a domain.
const probeLabel = "agentg-probe"

// Warnings lists what agentg check should point out, in policy order:
//
//   - an agent with neither a password nor cidrs (any client can claim
//     it), and a rule scoped to an agent the policy does not define
//     (anyone can claim it when names are free; no one otherwise);
//   - an http rule whose host is not intercepted for some agent it
//     applies to: inside a TLS tunnel agentg does not terminate, http
//     rules cannot be enforced;
//   - an http rule whose host shares a server with names that are
//     allowed but not intercepted, so that requests for the host could
//     be sent inside their tunnels: other names the hosts or lists (or
//     the default) allow next to it (a wildcard allow of "*.x.test" next
//     to http rules on api.x.test), names the resolve table maps to the
//     same address, and that address as an IP literal;
//   - a tool pattern (mcp tools, redact, rate_limits) naming a server
//     that mcp servers does not define;
//   - a secret written in the policy (credentials, insecure_inline);
//   - a gateway credential naming an agent the agents section does not
//     define, when it defines any (a misspelt name gets no agent's rules);
//   - llm models rules that deny while unparsed is not deny: a request
//     agentg cannot read passes without its model being decided;
//   - llm tool_use on with no mcp tools rule and mcp default allow: it
//     would strike nothing.
//   - mcp unrequested: approve or deny without an llm section: no model
//     turn is read, so it never applies.
//
// Agents are tried one per name the policy mentions plus one it does not;
// ports are 443 (or the first port the policy allows), or the ports an
// http rule is restricted to.
func (e *Engine) Warnings() []Warning {
	w := &warner{e: e, seen: map[string]bool{}}
	w.agents = w.agentNames()
	w.agentClaims()
	w.agentPasswords()
	for _, r := range e.http.order {
		if !w.unintercepted(r) {
			w.neighbours(r)
		}
	}
	w.sharedAddresses()
	w.mcpRefs()
	w.credentialWarnings()
	w.gatewayWarnings()
	w.llmWarnings()         // llm.go
	w.llmGuardWarnings()    // llm_tooluse.go
	w.unrequestedWarnings() // mcp_unrequested.go
	return w.out
}

type warner struct {
	e      *Engine
	agents []string // "" first: an agent no rule names
	seen   map[string]bool
	out    []Warning
}

func (w *warner) add(source, format string, args ...any) {
	wr := Warning{Source: source, Text: fmt.Sprintf(format, args...)}
	if k := wr.String(); !w.seen[k] {
		w.seen[k] = true
		w.out = append(w.out, wr)
	}
}

// agentNames is every agent name the policy mentions, sorted, after "".
func (w *warner) agentNames() []string {
	e := w.e
	var names []string
	for _, a := range e.agents.list {
		names = append(names, a.name)
	}
	for i := range e.sources {
		names = append(names, e.sources[i].agents...)
	}
	for _, es := range e.tunnels.byName {
		for _, en := range es {
			names = append(names, en.agents...)
		}
	}
	slices.Sort(names)
	return append([]string{""}, slices.Compact(names)...)
}

// agentLabel names the agents an answer for agent stands for.
func (w *warner) agentLabel(agent string) string {
	switch {
	case agent != "":
		return "for agent " + agent
	case len(w.agents) == 1:
		return "for any agent"
	}
	return "for agents the policy does not name"
}

// hostLabel describes a host tried for a warning.
func hostLabel(name string) string {
	if rest, ok := strings.CutPrefix(name, probeLabel+"."); ok {
		return "other names under " + rest
	}
	return name
}

func (w *warner) agentClaims() {
	e := w.e
	for _, a := range e.agents.list {
		if !a.hasPass && a.cidrs == nil {
			w.add(fmt.Sprintf("%s:%d", e.file, a.line), "agent %s has neither a password nor cidrs: any client can claim it", a.name)
		}
	}
	for i := range e.sources {
		s := &e.sources[i]
		for _, name := range s.agents {
			if e.agents.byName[name] != nil {
				continue
			}
			if _, err := netip.ParseAddr(name); err == nil {
				continue // clients that send no user are named by their address
			}
			if e.agents.freeNames {
				w.add(s.where, "%s applies to agent %s, which agents: does not define: any client can claim that name", s.label, name)
			} else {
				w.add(s.where, "%s applies to agent %s, which agents: does not define: no client can be %s", s.label, name, name)
			}
		}
	}
}

// port is the port warnings try when a rule names none.
func (w *warner) warnPort() uint16 {
	e := w.e
	if e.ports.allows(443) {
		return 443
	}
	return e.ports.ranges[0].lo
}

// warnPorts are the ports to try for a rule restricted to rs.
func (w *warner) warnPorts(rs []portRange) []uint16 {
	e := w.e
	if rs == nil {
		return []uint16{w.warnPort()}
	}
	var out []uint16
	for _, r := range rs {
		switch {
		case r.lo <= 443 && 443 <= r.hi && e.ports.allows(443):
			out = append(out, 443)
		case e.ports.allows(r.lo):
			out = append(out, r.lo)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// open finds an agent and port at which a tunnel to name is allowed but
// not intercepted; ok is false when there is none.
func (w *warner) open(s *source, name string, ports []uint16) (agent string, port uint16, d Decision, ok bool) {
	for _, a := range w.agents {
		if s != nil && !s.appliesTo(a) {
			continue
		}
		for _, p := range ports {
			h := addr.Host{Name: name, Port: p}
			if hd := w.e.Host(a, h); hd.Allowed() && !w.e.Tunnel(a, h).Intercept {
				return a, p, hd, true
			}
		}
	}
	return "", 0, Decision{}, false
}

// unintercepted warns when some host the http rule covers is not
// intercepted for an agent it applies to, and reports whether it did.
func (w *warner) unintercepted(r httpRef) bool {
	e := w.e
	s := &e.sources[r.src]
	var hosts []string
	if r.host.kind != kindSub {
		hosts = append(hosts, r.host.name)
	}
	if r.host.kind != kindExact {
		hosts = append(hosts, probeLabel+"."+r.host.name)
	}
	// A passthrough entry inside the pattern exempts its hosts however
	// the rest is intercepted.
	var pass []string
	for name, es := range e.tunnels.byName {
		for _, en := range es {
			h := name
			if en.kind == kindSub {
				h = probeLabel + "." + name
			}
			if en.pass && r.host.covers(h) && !slices.Contains(hosts, h) {
				pass = append(pass, h)
			}
		}
	}
	slices.Sort(pass)
	for _, h := range append(hosts, slices.Compact(pass)...) {
		if a, p, _, ok := w.open(s, h, w.warnPorts(s.ports)); ok {
			w.add(s.where, "http rule %s (%q) cannot be enforced %s on port %d: tunnels to %s are not intercepted, and http rules cannot see inside TLS",
				s.ruleID, r.text, w.agentLabel(a), p, hostLabel(h))
			return true
		}
	}
	return false
}

// neighbours warns when names next to the http rule's host (the apex of
// "*.name", other names under each parent domain, names below an exact
// host) are allowed but not intercepted: one of them may be served by
// the same server, and a request for the host sent inside its tunnel is
// never decided by the http rule. Only the first such name is named.
func (w *warner) neighbours(r httpRef) {
	e := w.e
	s := &e.sources[r.src]
	var others []string
	if r.host.kind == kindSub {
		others = append(others, r.host.name)
	}
	for p := r.host.name; ; {
		i := strings.IndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[i+1:]
		others = append(others, probeLabel+"."+p)
	}
	if r.host.kind == kindExact {
		others = append(others, probeLabel+"."+r.host.name)
	}
	for _, o := range others {
		if a, p, d, ok := w.open(s, o, w.warnPorts(s.ports)); ok {
			by := d.Rule
			if d.Source != "" && d.Source != d.Rule {
				by += " (" + d.Source + ")"
			}
			w.add(s.where, "http rule %s (%q): %s allowed by %s but not intercepted %s on port %d: a name on the same server as %s could carry requests past this rule",
				s.ruleID, r.text, hostLabel(o)+verbFor(o), by, w.agentLabel(a), p, r.host.name)
			return
		}
	}
}

func verbFor(name string) string {
	if strings.HasPrefix(name, probeLabel+".") {
		return " are"
	}
	return " is"
}

// httpCovers reports whether some http rule that applies to agent covers
// the canonical name.
func (w *warner) httpCovers(agent, name string) bool {
	e := w.e
	for i := range suffixes(name) {
		for _, en := range e.http.byName[name[i:]] {
			if _, ok := suffixRank(name, i, en.kind); ok && e.sources[en.src].appliesTo(agent) {
				return true
			}
		}
	}
	return false
}

// sharedAddresses warns about names with http rules whose resolve:
// addresses can be reached without interception: through another name
// mapped to the same address, or as an IP literal.
func (w *warner) sharedAddresses() {
	e := w.e
	names := make([]string, 0, len(e.resolve.byName))
	for n := range e.resolve.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	port := w.warnPort()
	where := func(n string) string { return fmt.Sprintf("%s:%d", e.file, e.resolve.line[n]) }
	// The first agent for whom the address is open is named: one
	// warning per way around the rules, not one per agent.
	for _, r := range names {
		for _, ip := range e.resolve.byName[r] {
			u := ip.Unmap()
			for _, o := range names {
				if o == r || !slices.ContainsFunc(e.resolve.byName[o], func(x netip.Addr) bool { return x.Unmap() == u }) {
					continue
				}
				h := addr.Host{Name: o, Port: port}
				for _, a := range w.agents {
					if w.httpCovers(a, r) && e.Host(a, h).Allowed() && !e.Tunnel(a, h).Intercept {
						w.add(where(o), "%s shares address %s with %s, which has http rules, and tunnels to %s are not intercepted %s: requests for %s sent through them escape its http rules",
							o, u, r, o, w.agentLabel(a), r)
						break
					}
				}
			}
			lit := addr.Host{Name: u.String(), IP: u, Port: port}
			for _, a := range w.agents {
				if w.httpCovers(a, r) && e.Host(a, lit).Allowed() && !e.Tunnel(a, lit).Intercept {
					w.add(where(r), "%s has http rules and resolves to %s, which is allowed as an IP literal without interception %s: requests for %s sent to the address escape its http rules",
						r, u, w.agentLabel(a), r)
					break
				}
			}
		}
	}
}
