package gateway

import (
	"net/http"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// The gateway's own events, besides the guard's (which carry door
// "gateway" too): a request refused before any session (who), a server
// that did not answer a list in time, a name two servers both expose.
const (
	ActionUnavailable = "server-unavailable"
	ActionUnreachable = "server-unreachable"
	ActionCollision   = "name-collision"
	ActionUnrouted    = "server-request-unrouted"

	ruleAuth        = "builtin:gateway-auth"
	ruleUnavailable = "builtin:gateway-upstream"
	ruleCollision   = "builtin:gateway-collision"
	ruleStdio       = "builtin:gateway-stdio"
)

func (g *Gateway) event(who Who, action, server string) *audit.Event {
	return &audit.Event{ID: g.cfg.Log.NewID(), Time: time.Now(), Kind: "mcp", Agent: who.Agent, Client: who.Client,
		Door: Door, Path: Path, MCP: &audit.MCP{Action: action, Server: server}}
}

// refused records a request the Authenticator refused.
func (g *Gateway) refused(r *http.Request, err error) {
	ev := g.event(Who{Client: r.RemoteAddr}, "", "")
	ev.Method, ev.Decision, ev.Rule, ev.Status = r.Method, "deny", ruleAuth, http.StatusUnauthorized
	ev.Reason = "gateway refused the request: " + err.Error()
	g.cfg.Log.Log(ev)
}

// unavailable records a server that a list went on without.
func (g *Gateway) unavailable(who Who, server, method string, err error) {
	ev := g.event(who, ActionUnavailable, server)
	ev.Method, ev.Decision, ev.Rule = method, "report", ruleUnavailable
	ev.Reason = "mcp server " + server + " did not answer " + method + ": " + err.Error() + "; the answer lists the servers that did"
	g.cfg.Log.Log(ev)
}

// collision records a name two servers both expose, hidden from both.
func (g *Gateway) collision(who Who, kind, name string, servers []string) {
	ev := g.event(who, ActionCollision, servers[0])
	ev.Decision, ev.Rule = "deny", ruleCollision
	ev.Reason = kind + " " + name + " is exposed by mcp servers " + servers[0] + " and " + servers[1] +
		": hidden from both, never shadowed (give one a prefix)"
	g.cfg.Log.Log(ev)
}

// unreachable records a request the guard let through that could not be
// sent to the server (its address refused, the connection failed).
func (g *Gateway) unreachable(who Who, server, method, why string) {
	ev := g.event(who, ActionUnreachable, server)
	ev.Method, ev.Decision, ev.Rule, ev.Status = method, "deny", ruleUnavailable, http.StatusBadGateway
	ev.Reason = "mcp server " + server + " unreachable: " + why
	g.cfg.Log.Log(ev)
}

// stdioRefused records a line of a command server's that the stdio
// multiplexer cannot read (so cannot route): it reaches no client.
func (g *Gateway) stdioRefused(server string, err error) {
	ev := g.event(Who{Agent: rules.ServerAgent(server)}, "", server)
	ev.Decision, ev.Rule = "deny", ruleStdio
	ev.Reason = "refused a line from mcp server " + server + ": " + err.Error()
	g.cfg.Log.Log(ev)
}

// stdioUnrouted records a request of a command server's that no client
// session can be said to have caused: the server got an error.
func (g *Gateway) stdioUnrouted(server, method, why string) {
	ev := g.event(Who{Agent: rules.ServerAgent(server)}, ActionUnrouted, server)
	ev.Method, ev.Decision, ev.Rule = method, "deny", ruleStdio
	ev.Reason = "mcp server " + server + " sent " + method + ", which cannot be routed to a client: " + why
	g.cfg.Log.Log(ev)
}
