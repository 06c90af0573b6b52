package admin

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/agentg/agentg/state"
)

// gatewayStub stands where the gateway package will: what it reports for
// the servers it serves.
type gatewayStub map[string]GatewayState

func (g gatewayStub) ServerStatus(name string) (GatewayState, bool) {
	s, ok := g[name]
	return s, ok
}

const registryPolicy = `mcp:
  servers:
    - {name: jira, url: mcp.jira.test/v1/**}
    - {name: gh, url: api.gh.test/mcp}
    - {name: wild, url: "*.wild.test"}
credentials:
  secrets:
    tok: {env: AGENTG_ADMIN_TEST_NOT_SET}
  bindings:
    - {id: jira-bearer, host: mcp.jira.test, secret: tok, header: {name: Authorization, value: "Bearer {{secret}}"}}
    - {id: gh-by-name, server: gh, secret: tok, basic: {user: bot}}
`

// Every configured server is listed in policy order, with what the
// proxy saw (tools, changed pins, last seen) and, where the gateway
// serves it, the gateway's live state; a server the proxy saw that the
// policy no longer names comes last.
func TestRegistry(t *testing.T) {
	st, err := state.NewMemory(state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := func(s string) state.Hash { return state.Hash(sha256.Sum256([]byte(s))) }
	st.ObserveServer(state.ServerSighting{Server: "jira", URL: "https://mcp.jira.test/v1/mcp"})
	st.CheckPin("jira", "search", h("a"))
	st.CheckPin("jira", "create", h("a"))
	st.CheckPin("jira", "create", h("b")) // changed, not accepted
	st.CheckPin("jira", "delete", h("a"))
	st.CheckPin("jira", "delete", h("b"))
	st.AcceptPin("jira", "delete") // changed, accepted
	st.ObserveServer(state.ServerSighting{Server: "old", URL: "https://old.test/mcp"})
	st.CheckPin("old", "x", h("a"))

	ctx := context.Background()
	ts := startServer(t, Config{MCP: st, Policy: newPolicy(t, registryPolicy)})
	reg, err := ts.client.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []RegistryServer{
		{Name: "jira", URL: "mcp.jira.test/v1/**", State: StateNotServed, Auth: "binding jira-bearer (secret tok)", Tools: 3, PinsChanged: 1, PinsChangedAccepted: 1},
		{Name: "gh", URL: "api.gh.test/mcp", State: StateNotServed, Auth: "binding gh-by-name (secret tok)"},
		{Name: "wild", URL: "*.wild.test", State: StateNotServed, Auth: "none"},
		{Name: "old", State: StateUnconfigured, Auth: "none", Tools: 1},
	}
	check := func(reg Registry, want []RegistryServer) {
		t.Helper()
		if len(reg.Items) != len(want) {
			t.Fatalf("items %+v", reg.Items)
		}
		for i, w := range want {
			g := reg.Items[i]
			if g.Name != w.Name || g.URL != w.URL || g.State != w.State || g.Auth != w.Auth || g.Tools != w.Tools ||
				g.PinsChanged != w.PinsChanged || g.PinsChangedAccepted != w.PinsChangedAccepted || g.LastError != w.LastError {
				t.Errorf("item %d\n got %+v\nwant %+v", i, g, w)
			}
			if (g.Gateway == nil) != (w.Gateway == nil) {
				t.Errorf("item %d gateway %+v, want %+v", i, g.Gateway, w.Gateway)
			}
			if w.URL != "" && g.Source == "" {
				t.Errorf("item %d has no source", i)
			}
		}
		if len(reg.Inventory.Servers) != 2 {
			t.Errorf("inventory beside: %+v", reg.Inventory)
		}
	}
	check(reg, want)
	if reg.Items[0].LastSeen.IsZero() || !reg.Items[1].LastSeen.IsZero() {
		t.Errorf("last seen: %v %v", reg.Items[0].LastSeen, reg.Items[1].LastSeen)
	}

	gw := gatewayStub{
		"jira": {Connected: true, Auth: "oauth: authorized", Tools: 7},
		"gh":   {LastError: "dial api.gh.test:443: connection refused"},
		"wild": {},
	}
	ts2 := startServer(t, Config{MCP: st, Policy: newPolicy(t, registryPolicy), Servers: gw})
	reg, err = ts2.client.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := func(s GatewayState) *GatewayState { return &s }
	want[0].State, want[0].Auth, want[0].Tools, want[0].Gateway = StateConnected, "oauth: authorized", 7, g(gw["jira"])
	want[1].State, want[1].LastError, want[1].Gateway = StateError, gw["gh"].LastError, g(gw["gh"])
	want[2].State, want[2].Gateway = StateDisconnected, g(gw["wild"])
	check(reg, want)

	// Without MCP state the configured servers are still listed.
	ts3 := startServer(t, Config{Policy: newPolicy(t, registryPolicy)})
	if reg, err := ts3.client.Servers(ctx); err != nil || len(reg.Items) != 3 || reg.Inventory.Servers == nil {
		t.Fatalf("no state: %+v %v", reg, err)
	}
}
