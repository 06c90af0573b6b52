package test

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentg/agentg/state"
)

// `agentg mcp pins list|accept` and `agentg mcp inventory`, run as the
// real binary against the files a running store (the server's) writes,
// and that store taking the acceptance in on Reload.
func TestCLIMCPState(t *testing.T) {
	dir := t.TempDir()
	defHash := func(s string) state.Hash { return state.Hash(sha256.Sum256([]byte(s))) }

	// Before the server has seen anything.
	if code, out := runAgentg(t, "mcp", "pins", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "no pins") {
		t.Fatalf("pins list, empty: %d %q", code, out)
	}
	if code, out := runAgentg(t, "mcp", "inventory", "--data-dir", dir); code != 0 || !strings.Contains(out, "no MCP inventory") {
		t.Fatalf("inventory, empty: %d %q", code, out)
	}

	// The server's store: what the guard records as it sees MCP traffic.
	srv, err := state.NewMemory(state.Options{DataDir: dir, WriteInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.ObserveServer(state.ServerSighting{Server: "jira", URL: "https://mcp.atlassian.example/v1/mcp", Info: state.ServerInfo{Name: "Atlassian MCP", Version: "2.1"}, Revision: "2025-06-18"})
	srv.ObserveServer(state.ServerSighting{Server: "gomcp", URL: "http://127.0.0.1:9/mcp", Revision: "2026-07-28"})
	srv.CheckPin("jira", "create_issue", defHash("create v1"))
	srv.CheckPin("jira", "delete_project", defHash("delete v1"))
	if got := srv.CheckPin("jira", "delete_project", defHash("delete v2: also email the keys")); got != state.PinChanged {
		t.Fatalf("rug pull: %v", got)
	}
	srv.CheckPin("gomcp", "a.b", defHash("ab v1"))
	srv.CheckPin("gomcp", "a.b", defHash("ab v2"))
	for range 3 {
		srv.CountCall("jira", "create_issue")
	}
	if err := srv.WriteInventory(); err != nil {
		t.Fatal(err)
	}

	code, out := runAgentg(t, "mcp", "pins", "list", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("pins list: %d %s", code, out)
	}
	for _, want := range []string{"SERVER", "jira", "create_issue", "pinned", "delete_project", "CHANGED (not accepted)",
		defHash("delete v2: also email the keys").String()[:16], defHash("delete v1").String()[:16], "gomcp", "a.b"} {
		if !strings.Contains(out, want) {
			t.Errorf("pins list lacks %q:\n%s", want, out)
		}
	}

	// Accept, with the flag after the positional arguments.
	code, out = runAgentg(t, "mcp", "pins", "accept", "jira", "delete_project", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "accepted tool delete_project of server jira") || !strings.Contains(out, defHash("delete v2: also email the keys").String()) {
		t.Fatalf("pins accept: %d %s", code, out)
	}
	// SERVER.TOOL splits at the first dot: tool a.b of server gomcp.
	if code, out = runAgentg(t, "mcp", "pins", "accept", "--data-dir", dir, "gomcp.a.b"); code != 0 || !strings.Contains(out, "tool a.b of server gomcp") {
		t.Fatalf("pins accept SERVER.TOOL: %d %s", code, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, state.PinsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pins file after accept: %v %v", fi, err)
	}

	// The running server takes it in on Reload (SIGHUP or its poll).
	if got := srv.CheckPin("jira", "delete_project", defHash("delete v2: also email the keys")); got != state.PinChanged {
		t.Fatalf("before reload: %v", got)
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := srv.CheckPin("jira", "delete_project", defHash("delete v2: also email the keys")); got != state.PinChangedAccepted {
		t.Fatalf("after reload: %v, want changed-accepted", got)
	}
	if got := srv.CheckPin("gomcp", "a.b", defHash("ab v2")); got != state.PinChangedAccepted {
		t.Fatalf("gomcp a.b after reload: %v", got)
	}

	// Refusals, with a clear reason and a non-zero exit.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"accept", "jira", "delete_project"}, 1, "nothing to accept"},
		{[]string{"accept", "jira", "create_issue"}, 1, "nothing to accept"},
		{[]string{"accept", "jira", "no_such_tool"}, 1, "no such pin"},
		{[]string{"accept", "nope", "x"}, 1, "no such pin"},
		{[]string{"accept", "jira"}, 2, "Usage: agentg mcp pins accept"},
		{[]string{"accept"}, 2, "Usage: agentg mcp pins accept"},
		{[]string{"accept", "a", "b", "c"}, 2, "Usage: agentg mcp pins accept"},
		{[]string{"list", "extra"}, 2, "Usage: agentg mcp pins list"},
		{[]string{"frob"}, 2, "unknown subcommand"},
	} {
		code, out := runAgentg(t, append(append([]string{"mcp", "pins"}, tc.args...), "--data-dir", dir)...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("mcp pins %v: %d %q, want %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	if code, out := runAgentg(t, "mcp", "pins", "accept", "jira", "delete_project", "--data-dir", t.TempDir()); code != 1 || !strings.Contains(out, "no such pin") {
		t.Errorf("accept without a pins file: %d %q", code, out)
	}

	// The inventory, for people and as JSON.
	if err := srv.WriteInventory(); err != nil {
		t.Fatal(err)
	}
	code, out = runAgentg(t, "mcp", "inventory", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("inventory: %d %s", code, out)
	}
	for _, want := range []string{"2 server(s)", "server jira", "https://mcp.atlassian.example/v1/mcp", `"Atlassian MCP" version "2.1"`,
		"2025-06-18", "create_issue", "changed, accepted", "server gomcp", "2026-07-28"} {
		if !strings.Contains(out, want) {
			t.Errorf("inventory lacks %q:\n%s", want, out)
		}
	}
	code, out = runAgentg(t, "mcp", "inventory", "--json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("inventory --json: %d %s", code, out)
	}
	var inv state.Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("inventory --json is not JSON: %v\n%s", err, out)
	}
	want := srv.Snapshot()
	if len(inv.Servers) != len(want.Servers) {
		t.Fatalf("inventory --json has %d servers, the store %d", len(inv.Servers), len(want.Servers))
	}
	j := inv.Servers[1]
	if j.Name != "jira" || len(j.Tools) != 2 || j.Tools[0].Name != "create_issue" || j.Tools[0].Calls != 3 ||
		j.Tools[1].Hash != defHash("delete v2: also email the keys") || !j.Tools[1].Accepted || !j.Tools[1].Changed {
		t.Fatalf("inventory --json jira: %+v", j)
	}

	for _, args := range [][]string{{"mcp"}, {"mcp", "frob"}, {"mcp", "inventory", "extra", "--data-dir", dir}} {
		if code, _ := runAgentg(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	for _, args := range [][]string{{"mcp", "--help"}, {"mcp", "pins", "--help"}, {"mcp", "inventory", "--help"}} {
		if code, out := runAgentg(t, args...); code != 0 || !strings.Contains(out, "Usage: agentg mcp") {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
}

// A damaged pins file is reported, never taken for an empty one.
func TestCLIMCPPinsDamaged(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, state.PinsFile), []byte(`{"version":1,"pins":[`), 0o600)
	for _, args := range [][]string{{"list"}, {"accept", "jira", "x"}} {
		code, out := runAgentg(t, append(append([]string{"mcp", "pins"}, args...), "--data-dir", dir)...)
		if code != 1 || !strings.Contains(out, state.PinsFile) {
			t.Errorf("mcp pins %v over a damaged file: %d %q", args, code, out)
		}
	}
}
