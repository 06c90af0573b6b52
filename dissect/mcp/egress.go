package mcp

import (
	"crypto/sha256"

	"github.com/agentg/agentg/audit"
	store "github.com/agentg/agentg/state"
)

// Egress pins: pins cover what a tool does, not only what it says. A
// server agentg started reaches the network through agentg under its own
// name; while one of its tool calls is in flight (causes.go) each host
// it reaches is pinned per (server, tool) in the pin store, apart from
// the tools' definitions (state.EgressPin). The first time a tool is
// seen to reach a host raises an event (action egress-new), as a tool
// first listed does; the pin persists with the others, so a host reached
// in an earlier run is not new.

// ActionEgressNew is the action of the event of a tool's first egress to
// a host.
const ActionEgressNew = "egress-new"

// SawEgress records that server's tool (its call's event id: cause)
// reached host, and writes the egress-new event the first time; the
// proxy calls it for each request of a server's own identity made while
// a call was in flight. An egress the store cannot pin is reported too:
// what cannot be checked is said, not skipped.
func (g *Guard) SawEgress(server, tool, host, cause string) {
	if server == "" || tool == "" || host == "" {
		return
	}
	ps, pt := store.EgressPin(server, tool, host)
	res := g.State.CheckPin(ps, pt, store.Hash(sha256.Sum256([]byte(host))))
	if res != store.PinNew && res != store.PinUnchecked {
		return
	}
	ev := &audit.Event{ID: g.Log.NewID(), Parent: cause, Time: g.now(), Kind: "mcp", Agent: "server:" + server,
		Host: host, Decision: "report", Rule: "mcp:egress-pin"}
	ev.MCP = &audit.MCP{Action: ActionEgressNew, Server: server, Tool: tool, Pin: "new"}
	ev.Reason = "tool " + server + "." + tool + " reached " + host + " for the first time"
	if res == store.PinUnchecked {
		ev.MCP.Pin = ""
		ev.Reason = "tool " + server + "." + tool + " reached " + host + "; the egress could not be pinned (the pin store is full or closed)"
	}
	g.emit(ev)
}
