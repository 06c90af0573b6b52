package rules

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/agentg/agentg/addr"
)

// Explanations: the live path's decisions for one question, made by the
// same functions in the same order as the doors make them, so that
// `agentg check` prints what agentg would decide rather than a
// re-telling of it. The doors call the steps (Host, StaticAddrs,
// Addresses, HTTPRules.Decide, MCPRules.Tool...) one by one, because
// they do I/O between them (DNS, approvals); Explain strings the same
// steps together without the I/O: a name the static table does not
// resolve has its addresses unchecked here, as DNS is not consulted.

// Explanation is the answer to one destination or HTTP request question.
type Explanation struct {
	// Decision is the final decision: the host's, then its addresses'
	// when they are known without DNS, then (for a request) the http
	// rules' as the exchange path folds it in.
	Decision Decision
	// Tunnel is what a CONNECT to the host would do with its TLS.
	Tunnel TunnelPolicy
}

// Explain decides q as the doors do. With q.Method empty it is a
// destination question (a CONNECT or a connection to q.Host); otherwise
// an HTTP request, decided by the http rules only when the host and its
// addresses allow it (a terminated request that the host denies never
// reaches them).
func (e *Engine) Explain(q Request) Explanation {
	d := e.Host(q.Agent, q.Host)
	if ips, ok := e.StaticAddrs(q.Host); ok {
		d, _ = e.Addresses(d, Dest{Agent: q.Agent, Host: q.Host, IPs: ips})
	}
	if q.Method != "" && d.Allowed() {
		d = e.http.Decide(d, q, false)
	}
	return Explanation{Decision: d, Tunnel: e.Tunnel(q.Agent, q.Host)}
}

// StaticAddrs returns the addresses h has without asking DNS: an IP
// literal's own, or those the resolve section gives its name. ok is
// false when only DNS can tell. The slice is the engine's: read-only.
func (e *Engine) StaticAddrs(h addr.Host) (ips []netip.Addr, ok bool) {
	if h.IsIP() {
		return []netip.Addr{h.IP}, true
	}
	return e.Resolve(h.Name)
}

// Decide is the http rules' step of the exchange path: it decides q and
// folds the answer into prior, the decision the request already has
// (host, addresses, DoH), which must allow it. An allow never
// overwrites a decision that report mode let through, so the event
// still says the request would have been denied. quietDefault is set
// where no matching rule leaves the host's decision as the event's (the
// explicit proxy's absolute-form requests); elsewhere "http:default"
// is the answer when no rule matched.
func (hr *HTTPRules) Decide(prior Decision, q Request, quietDefault bool) Decision {
	d := hr.Request(q)
	switch {
	case quietDefault && d.Rule == "http:default":
		return prior
	case d.Action != Allow || prior.Action == Allow:
		return d
	}
	return prior
}

// ToolExplanation is the answer to one tools/call question: the verdict
// with its obligations, and what the guard knows besides.
type ToolExplanation struct {
	ToolVerdict
	// Results are the redactions applied to the call's results.
	Results []Redaction
	// Bound reports whether mcp servers defines the call's server.
	Bound bool
	// Unbound is the decision for MCP on a host no servers entry binds
	// (the call's server is ""), which comes before any tool rule.
	Unbound Decision
}

// ExplainTool decides q as the guard does (Tool, then the results'
// redactions).
func (m *MCPRules) ExplainTool(q ToolCall) ToolExplanation {
	return ToolExplanation{ToolVerdict: m.Tool(q), Results: m.ResultRedactions(q.Agent, q.Server, q.Tool),
		Bound: m.bound(q.Server), Unbound: m.UnknownServers}
}

// ReadExplanation is the answer to one prompts/get or resources/read
// question.
type ReadExplanation struct {
	Decision
	Bound   bool     // mcp servers defines the server
	Unbound Decision // as in ToolExplanation
}

// ExplainPrompt decides q as the guard does.
func (m *MCPRules) ExplainPrompt(q PromptGet) ReadExplanation {
	return ReadExplanation{Decision: m.Prompt(q), Bound: m.bound(q.Server), Unbound: m.UnknownServers}
}

// ExplainResource decides q as the guard does.
func (m *MCPRules) ExplainResource(q ResourceRead) ReadExplanation {
	return ReadExplanation{Decision: m.Resource(q), Bound: m.bound(q.Server), Unbound: m.UnknownServers}
}

func (m *MCPRules) bound(server string) bool {
	return slices.ContainsFunc(m.servers.list, func(b ServerBinding) bool { return b.Name == server })
}

// Explain decides q as the DNS filter does, less its state: the
// stateless guards (Query), then the name by the host rules and lists
// (Engine.Name, asked with the name as the filter holds it, without the
// trailing dot). The filter's counting guards (query_rate, subdomains)
// and its cache sit between these steps there; Explain counts nothing.
func (d *DNSRules) Explain(q DNSQuery) Decision {
	if dd := d.Query(q); dd.Rule != "" {
		return dd
	}
	return d.e.Name(q.Agent, strings.TrimSuffix(q.Name, "."))
}
