package mcp

import (
	"strings"

	"github.com/agentg/agentg/audit"
	store "github.com/agentg/agentg/state"
)

// Lifecycle events. Besides the one event per request of the client's,
// the guard records what it learns about servers, in events of kind mcp
// whose "action" says what happened: a session started ("session-start":
// initialize answered with an Mcp-Session-Id, a 2026-07-28 server/discover
// answered, a 2024-11-05 GET stream's endpoint event), a server was seen
// for the first time ("server-new"), a tool was first listed or changed
// its definition ("tool-new", "tool-changed", written by pinEvent), an
// answer was withheld ("refused-answer"). Each names the exchange it was
// seen in as its parent, like the request events.

// Actions of lifecycle events.
const (
	ActionSessionStart  = "session-start"
	ActionServerNew     = "server-new"
	ActionToolNew       = "tool-new"
	ActionToolChanged   = "tool-changed"
	ActionToolMigrated  = "tool-pin-migrated" // a pin of an older hash version, re-pinned (rewrite.go)
	ActionRefusedAnswer = "refused-answer"
)

// lifecycleEvent starts an event about x's server rather than about one
// request.
func (g *Guard) lifecycleEvent(x *Exchange, action, method string) *audit.Event {
	ev := g.newEvent(x)
	ev.Path, ev.Method, ev.Decision, ev.Rule = x.Path, method, "allow", "mcp:"+action
	ev.MCP = &audit.MCP{Action: action, Server: x.Server}
	return ev
}

// sawServer records a sighting of x's server in the inventory, and writes
// the server-new event when it is the first. Only servers the policy
// names are in the inventory: an unnamed host's name is not a server's.
func (g *Guard) sawServer(x *Exchange, s store.ServerSighting, method string) {
	if !x.Governed() {
		return
	}
	s.Server = x.Server
	if s.URL == "" {
		s.URL = x.URL
	}
	first, err := g.State.ObserveServer(s)
	if err != nil || !first {
		return
	}
	ev := g.lifecycleEvent(x, ActionServerNew, method)
	ev.Reason = "MCP server " + x.Server + " first seen at " + s.URL
	ev.MCP.ServerInfo = infoText(s.Info)
	ev.MCP.Revision = s.Revision
	g.emit(ev)
}

// sessionStarted writes the session-start event. session is the
// Mcp-Session-Id (the legacy endpoint; "" for a 2026-07-28 discovery,
// which opens no session on the server).
func (g *Guard) sessionStarted(x *Exchange, method, session, revision string, info store.ServerInfo) {
	ev := g.lifecycleEvent(x, ActionSessionStart, method)
	ev.MCP.Session, ev.MCP.Revision, ev.MCP.ServerInfo = session, revision, infoText(info)
	if d := unknownServer(x.Engine.MCP().MCPSettings); !x.Governed() {
		ev.Decision, ev.Rule, ev.RuleSource = d.Outcome(), d.Rule, d.Source
	}
	switch {
	case session == "":
		ev.Reason = "MCP " + revision + " " + method + " answered (stateless: no session)"
	case revision == "2024-11-05" && method == "":
		ev.Reason = "MCP 2024-11-05 HTTP+SSE session: the stream named its endpoint " + session
	default:
		ev.Reason = "MCP session " + session + " started, revision " + revision
	}
	g.emit(ev)
}

func infoText(i store.ServerInfo) string { return strings.TrimSpace(i.Name + " " + i.Version) }
