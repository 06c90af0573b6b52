package proxy

import (
	"fmt"

	"github.com/agentg/agentg/rules"
)

// The egress of MCP servers agentg started (issue 17). Such a server's
// HTTPS_PROXY carries proxy credentials of its own: the user
// "server.NAME" (agent "server:NAME") and a password made for that one
// process. The proxy
// proves the claim with ServerIdentities (the supervisor that made the
// password), decides the request under the server's egress list
// (rules.Engine.Egress) and the host rules, and writes server (and, while
// one of the server's tool calls is in flight, that call's event id as
// caused_by) on its events, and tells the guard the host a tool reached
// (its egress pins).

// ServerIdentities proves the credentials of servers agentg started.
type ServerIdentities interface {
	// Check reports whether password is the one given to the running
	// process of server.
	Check(server, password string) bool
}

// EgressCauses attributes a server's egress to the tool call in flight
// and pins what a tool reached; *mcp.Guard implements it.
type EgressCauses interface {
	CauseOf(server string) (event, tool string, ok bool)
	SawEgress(server, tool, host, cause string)
}

// serverClaim proves a claim of a server's own identity: handled says the
// user is one ("server:NAME"), whatever the outcome.
func (p *pipeline) serverClaim(user, pass string) (agent string, handled bool, err error) {
	server, ok := rules.ServerOfProxyUser(user)
	if !ok {
		return "", false, nil
	}
	if p.servers == nil || !p.servers.Check(server, pass) {
		return "", true, fmt.Errorf("bad credentials for mcp server %s", server)
	}
	return rules.ServerAgent(server), true, nil
}

// serverEgress decides f (its agent known) under its server's egress
// list, and notes the server and the call that caused the request; a
// refusal when the list does not name the host.
func (p *pipeline) serverEgress(eng *rules.Engine, f *flow) *refusal {
	server, ok := rules.ServerOfAgent(f.agent)
	if !ok {
		return nil
	}
	f.server = server
	if p.causes != nil {
		if ev, tool, ok := p.causes.CauseOf(server); ok {
			f.causedBy, f.causeTool = ev, tool
		}
	}
	if d, restricted := eng.Egress(f.agent, f.host); restricted && !d.Allowed() {
		f.decision = d
		return denied(f)
	}
	return nil
}

// sawEgress pins the host an allowed request of a server's reached, for
// the tool whose call caused it.
func (p *pipeline) sawEgress(f *flow) {
	if f.server != "" && f.causeTool != "" && p.causes != nil {
		p.causes.SawEgress(f.server, f.causeTool, f.host.Name, f.causedBy)
	}
}
