package test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/state"
)

// Issue 7, inventory: agentg serve keeps which MCP servers it saw and
// their tools with hashes and call counts, and writes it to the data
// directory every --inventory-interval and on shutdown, where `agentg mcp
// inventory` reads it: the real binary, real calls, the real CLI.
func TestMCPInventoryFromServe(t *testing.T) {
	dir := t.TempDir()
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	stateful := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA})
	stateless := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStatelessJSON, CA: upCA})
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: filepath.Join(dir, "agentg"),
		Policy: mcpPolicy(mcpBase),
		Args:   []string{"--upstream-ca", caFile, "--shutdown-timeout", "1s", "--inventory-interval", "100ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	via := testenv.MCPClientConfig{Proxy: a.URL(), Roots: pool}
	connect := func(s *testenv.MCPServer, rev string) *testenv.MCPClient {
		t.Helper()
		cfg := via
		cfg.Revision = rev
		cl, err := testenv.ConnectMCP(mcpCtx(t), s.Mode, s.URL, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	old := connect(stateful, "2025-11-25")
	listAll(t, old)
	args := map[string]any{"text": "hi"}
	for range 3 {
		res, err := callTool(t, old, testenv.MCPToolEcho, args)
		wantEcho(t, res, err, args)
	}
	nu := connect(stateless, "2026-07-28")
	listAll(t, nu)
	res, err := callTool(t, nu, testenv.MCPToolMutable, args)
	wantEcho(t, res, err, args)

	inventory := func() state.Inventory {
		t.Helper()
		code, out := runAgentg(t, "mcp", "inventory", "--json", "--data-dir", a.DataDir)
		if code != 0 {
			t.Fatalf("agentg mcp inventory --json: exit %d: %s", code, out)
		}
		var inv state.Inventory
		if err := json.Unmarshal([]byte(out), &inv); err != nil {
			t.Fatalf("inventory --json: %v\n%s", err, out)
		}
		return inv
	}
	srvOf := func(inv state.Inventory) *state.InventoryServer {
		for i := range inv.Servers {
			if inv.Servers[i].Name == "srv" {
				return &inv.Servers[i]
			}
		}
		return nil
	}
	calls := func(s *state.InventoryServer, tool string) (uint64, state.Hash) {
		for _, tl := range s.Tools {
			if tl.Name == tool {
				return tl.Calls, tl.Hash
			}
		}
		return 0, state.Hash{}
	}

	// Periodically, while agentg runs.
	var srv *state.InventoryServer
	waitFor(t, func() bool {
		srv = srvOf(inventory())
		if srv == nil {
			return false
		}
		echo, _ := calls(srv, testenv.MCPToolEcho)
		mut, _ := calls(srv, testenv.MCPToolMutable)
		return echo == 3 && mut == 1
	}, "the running agentg to write an inventory with srv's 3 echo calls and 1 mutable call")
	if len(inventory().Servers) != 1 {
		t.Errorf("inventory servers %+v, want srv alone (serverInfo names are not servers)", inventory().Servers)
	}
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		if !strings.Contains(strings.Join(srv.Revisions, ","), rev) {
			t.Errorf("revisions %v lack %s", srv.Revisions, rev)
		}
	}
	if srv.Info.Name != "peer" || len(srv.URLs) == 0 || !strings.Contains(srv.URLs[0], "mcp.test") {
		t.Errorf("server record %+v: want serverInfo peer and a mcp.test URL", srv)
	}
	_, h := calls(srv, testenv.MCPToolEcho)
	if h.IsZero() || len(srv.Tools) < 5 {
		t.Errorf("tools %+v: want every listed tool with its hash", srv.Tools)
	}

	// On shutdown: the calls since the last write are in the file once
	// agentg has exited, however long the interval.
	res, err = callTool(t, old, testenv.MCPToolEcho, args)
	wantEcho(t, res, err, args)
	old.Close()
	nu.Close()
	if err := a.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop agentg: %v", err)
	}
	if echo, _ := calls(srvOf(inventory()), testenv.MCPToolEcho); echo != 4 {
		t.Fatalf("after shutdown the inventory counts %d echo calls, want 4", echo)
	}
	code, out := runAgentg(t, "mcp", "inventory", "--data-dir", a.DataDir)
	if code != 0 {
		t.Fatalf("agentg mcp inventory: exit %d: %s", code, out)
	}
	for _, want := range []string{"server srv", "2025-11-25", "2026-07-28", `serverInfo "peer"`, h.String()[:12]} {
		if !strings.Contains(out, want) {
			t.Errorf("inventory lacks %q:\n%s", want, out)
		}
	}
	var echoLine string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == testenv.MCPToolEcho {
			echoLine = l
		}
	}
	if f := strings.Fields(echoLine); len(f) < 2 || f[1] != "4" {
		t.Errorf("echo's line %q: want 4 calls", echoLine)
	}
}
