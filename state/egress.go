package state

import (
	"strings"
	"time"
)

// Egress pins: the hosts each tool of a server agentg started was seen to
// reach through agentg (dissect/mcp, egress.go), pinned like tool
// definitions (trust on first use, persisted with the pins) but kept
// apart from them: under the pseudo-server "NAME egress" (no server name
// has a space), so that they have their own bound per server and a
// server's egress can never crowd out the pins of its tools, and listed
// in the inventory as the server's egress, not as tools.

const (
	egressPinSuffix = " egress"
	egressPinArrow  = " -> "
)

// EgressPin is the pin key (server, tool) of tool of server reaching host.
func EgressPin(server, tool, host string) (pinServer, pinTool string) {
	return server + egressPinSuffix, tool + egressPinArrow + host
}

// SplitEgressPin reads a pin key back: ok is false for a tool's
// definition pin.
func SplitEgressPin(pinServer, pinTool string) (server, tool, host string, ok bool) {
	server, ok = strings.CutSuffix(pinServer, egressPinSuffix)
	if !ok || strings.Contains(server, " ") {
		return "", "", "", false
	}
	tool, host, ok = strings.Cut(pinTool, egressPinArrow)
	return server, tool, host, ok
}

// InventoryEgress is one host a server's tool reached, in the inventory.
type InventoryEgress struct {
	Tool      string    `json:"tool"`
	Host      string    `json:"host"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}
