package admin

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// The registry (issue 17): every server the policy's mcp.servers
// configures, with its state, beside the inventory of servers seen
// through the proxy. GET /v1/mcp/servers answers it; `agentg mcp
// servers` and the console's Servers view show it.
//
// The live state of a server the gateway door serves (connected, last
// error, auth, tool count) is the gateway's: Config.Servers is asked for
// it. Until a gateway is wired, or for a server it does not serve, the
// entry says "not served by the gateway", and its tool count and pins
// come from what the proxy saw (the inventory and the pins).

// ServerStatus is what the admin server asks the gateway about the
// servers it serves. The gateway package implements it; it must answer
// from memory, without I/O (it is asked on every GET).
type ServerStatus interface {
	// ServerStatus reports server's live state at the gateway; ok is
	// false when the gateway does not serve it.
	ServerStatus(server string) (s GatewayState, ok bool)
}

// GatewayState is one server's live state at the gateway.
type GatewayState struct {
	Connected   bool      `json:"connected"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Auth is how the gateway authenticates upstream and whether that
	// works now ("none", "oauth: authorized", "oauth: needs login", ...):
	// never a credential.
	Auth  string `json:"auth,omitempty"`
	Tools int    `json:"tools"`
}

// notServed is the default ServerStatus: no gateway serves anything.
type notServed struct{}

func (notServed) ServerStatus(string) (GatewayState, bool) { return GatewayState{}, false }

// States of a registry entry.
const (
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
	StateError        = "error"
	StateNotServed    = "not served by the gateway"
	StateUnconfigured = "not configured" // seen through the proxy, no longer in the policy
)

// RegistryServer is one server in the registry.
type RegistryServer struct {
	Name   string `json:"name"`
	URL    string `json:"url,omitempty"`    // host pattern and path glob, as the policy writes it
	Source string `json:"source,omitempty"` // file:line of its mcp.servers entry
	State  string `json:"state"`            // one of the State constants
	// Gateway is the gateway's live state; nil when it does not serve
	// the server.
	Gateway   *GatewayState `json:"gateway"`
	LastError string        `json:"last_error,omitempty"`
	// Auth is the gateway's, or else the credential binding the proxy
	// attaches to the server's host ("binding ID (secret NAME)"), or
	// "none".
	Auth string `json:"auth"`
	// Tools is the gateway's count, or else the tools seen through the
	// proxy (pinned).
	Tools int `json:"tools"`
	// PinsChanged counts tools whose definition changed and is not
	// accepted; PinsChangedAccepted those whose change was accepted.
	PinsChanged         int `json:"pins_changed"`
	PinsChangedAccepted int `json:"pins_changed_accepted"`
	// LastSeen is when the proxy last saw the server; zero: never.
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// Registry is the answer of GET /v1/mcp/servers: the configured servers
// in policy order (then any the proxy saw that the policy no longer
// configures), and the inventory as GET /v1/mcp/inventory has it.
type Registry struct {
	Items     []RegistryServer `json:"items"`
	Inventory state.Inventory  `json:"inventory"`
}

func (s *Server) serveServers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.registry())
}

func (s *Server) registry() Registry {
	eng := s.cfg.Policy.Engine()
	status := s.cfg.Servers
	if status == nil {
		status = notServed{}
	}
	var inv state.Inventory
	var pins []state.Pin
	if s.cfg.MCP != nil {
		inv, pins = s.cfg.MCP.Snapshot(), s.cfg.MCP.Pins()
	}
	if inv.Servers == nil {
		inv.Servers = []state.InventoryServer{}
	}
	seen := make(map[string]*state.InventoryServer, len(inv.Servers))
	for i := range inv.Servers {
		seen[inv.Servers[i].Name] = &inv.Servers[i]
	}
	type changes struct{ open, accepted int }
	changed := map[string]changes{}
	for _, p := range pins {
		switch c := changed[p.Server]; p.Result() {
		case state.PinChanged:
			c.open++
			changed[p.Server] = c
		case state.PinChangedAccepted:
			c.accepted++
			changed[p.Server] = c
		}
	}
	out := Registry{Items: []RegistryServer{}, Inventory: inv}
	entry := func(name string) RegistryServer {
		c := changed[name]
		rs := RegistryServer{Name: name, Auth: "none", PinsChanged: c.open, PinsChangedAccepted: c.accepted}
		if is := seen[name]; is != nil {
			rs.Tools, rs.LastSeen = len(is.Tools), is.LastSeen
		}
		return rs
	}
	for _, b := range eng.MCP().Servers() {
		rs := entry(b.Name)
		rs.URL, rs.Source, rs.State = b.URL, b.Source, StateNotServed
		if a := bindingFor(eng, b.URL); a != "" {
			rs.Auth = a
		}
		if g, ok := status.ServerStatus(b.Name); ok {
			rs.Gateway, rs.Tools, rs.LastError = &g, g.Tools, g.LastError
			if g.Auth != "" {
				rs.Auth = g.Auth
			}
			switch {
			case g.Connected:
				rs.State = StateConnected
			case g.LastError != "":
				rs.State = StateError
			default:
				rs.State = StateDisconnected
			}
		}
		out.Items = append(out.Items, rs)
		delete(seen, b.Name)
	}
	var gone []RegistryServer
	for name := range seen {
		rs := entry(name)
		rs.State = StateUnconfigured
		gone = append(gone, rs)
	}
	slices.SortFunc(gone, func(a, b RegistryServer) int { return strings.Compare(a.Name, b.Name) })
	out.Items = append(out.Items, gone...)
	return out
}

// bindingFor names the credential binding the proxy would attach to a
// server's requests, for an entry whose host is one name (a pattern
// covers many hosts, which may differ): "binding ID (secret NAME)", and
// "(client certificate)" for an mTLS binding. Bindings by server name
// match through the same question (MCPRules.Server).
// Bindings restricted to agents are not every agent's, so they are asked
// for the agent "" and not found.
func bindingFor(eng *rules.Engine, url string) string {
	hostPart, path, _ := strings.Cut(url, "/")
	if strings.ContainsAny(hostPart, "*") || strings.HasPrefix(hostPart, ".") {
		return ""
	}
	h, err := addr.Canonical(hostPart)
	if err != nil {
		return ""
	}
	path = "/" + path
	if i := strings.IndexByte(path, '*'); i >= 0 {
		path = path[:i]
	}
	b := eng.Credentials().Match("", h, "https", path)
	if b == nil {
		return ""
	}
	label := "binding " + b.ID
	if b.Secrets != "" {
		label += " (secret " + b.Secrets + ")"
	}
	if b.Cert != nil {
		label += " (client certificate)"
	}
	return label
}

// Servers is GET /v1/mcp/servers.
func (c *Client) Servers(ctx context.Context) (Registry, error) {
	var r Registry
	err := c.call(ctx, http.MethodGet, "/v1/mcp/servers", nil, &r)
	return r, err
}
