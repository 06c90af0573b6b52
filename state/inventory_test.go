package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestInventory(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	m := newStore(t, clk, Options{DataDir: dir})
	start := clk.Now()
	sightings := []ServerSighting{
		{Server: "jira", URL: "https://mcp.atlassian.example/v1/mcp"},
		{Server: "jira", URL: "https://mcp.atlassian.example/v1/mcp", Info: ServerInfo{"Atlassian", "2.0"}, Revision: "2025-06-18"},
		{Server: "jira", URL: "https://mcp.atlassian.example/v1/mcp", Revision: "2025-11-25"},
		{Server: "jira", URL: "https://mcp.atlassian.example/v1/mcp", Revision: "2025-06-18"}, // nothing new
		{Server: "gomcp", URL: "http://127.0.0.1:9/mcp"},
	}
	firsts := []bool{true, false, false, false, true}
	for i, s := range sightings {
		clk.Advance(time.Second)
		first, err := m.ObserveServer(s)
		if err != nil {
			t.Fatal(err)
		}
		if first != firsts[i] {
			t.Errorf("sighting %d (%+v): first %v, want %v", i, s, first, firsts[i])
		}
	}
	if _, err := m.ObserveServer(ServerSighting{URL: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nameless sighting: %v", err)
	}
	m.CheckPin("jira", "create_issue", hashOf("c1"))
	m.CheckPin("jira", "delete_project", hashOf("d1"))
	m.CheckPin("jira", "delete_project", hashOf("d2"))
	for range 3 {
		m.CountCall("jira", "create_issue")
	}
	m.CountCall("jira", "never_listed")
	m.CountCall("nobody", "x") // a server never seen: not counted anywhere

	inv := m.Snapshot()
	if len(inv.Servers) != 2 || inv.Servers[0].Name != "gomcp" || inv.Servers[1].Name != "jira" {
		t.Fatalf("servers %+v", inv.Servers)
	}
	j := inv.Servers[1]
	if fmt.Sprint(j.URLs) != "[https://mcp.atlassian.example/v1/mcp]" || fmt.Sprint(j.Revisions) != "[2025-06-18 2025-11-25]" ||
		j.Info != (ServerInfo{"Atlassian", "2.0"}) || !j.FirstSeen.Equal(start.Add(time.Second)) || !j.LastSeen.Equal(start.Add(5*time.Second)) /* the last CountCall */ || j.UnlistedCalls != 1 {
		t.Fatalf("jira %+v", j)
	}
	if len(j.Tools) != 2 {
		t.Fatalf("tools %+v", j.Tools)
	}
	if c := j.Tools[0]; c.Name != "create_issue" || c.Calls != 3 || c.Hash != hashOf("c1") || !c.Accepted || c.Changed {
		t.Errorf("create_issue %+v", c)
	}
	if d := j.Tools[1]; d.Name != "delete_project" || d.Calls != 0 || d.Hash != hashOf("d2") || d.Accepted || !d.Changed {
		t.Errorf("delete_project %+v", d)
	}

	if _, err := ReadInventory(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("inventory before any write: %v", err)
	}
	if err := m.WriteInventory(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, InventoryFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("inventory file: %v %v", fi, err)
	}
	read, err := ReadInventory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(read) != fmt.Sprint(inv) {
		t.Fatalf("read back\n%+v\nwant\n%+v", read, inv)
	}

	// A restart keeps servers and call counts.
	m.CountCall("jira", "create_issue")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := newStore(t, clk, Options{DataDir: dir})
	inv2 := m2.Snapshot()
	if len(inv2.Servers) != 2 || inv2.Servers[1].Tools[0].Calls != 4 || inv2.Servers[1].UnlistedCalls != 1 || fmt.Sprint(inv2.Servers[1].Revisions) != "[2025-06-18 2025-11-25]" {
		t.Fatalf("after restart: %+v", inv2.Servers)
	}
}

func TestInventoryBounds(t *testing.T) {
	m := newStore(t, nil, Options{MaxServers: 2})
	for i := range 40 {
		if _, err := m.ObserveServer(ServerSighting{Server: "s", URL: fmt.Sprint("u", i), Revision: fmt.Sprint("r", i)}); err != nil {
			t.Fatal(err)
		}
	}
	s := m.Snapshot().Servers[0]
	if len(s.URLs) != maxURLsPerServer || s.URLs[len(s.URLs)-1] != "u39" || len(s.Revisions) != maxRevisionsPerServer {
		t.Fatalf("bounded lists: %d URLs (last %s), %d revisions", len(s.URLs), s.URLs[len(s.URLs)-1], len(s.Revisions))
	}
	m.ObserveServer(ServerSighting{Server: "t"})
	if _, err := m.ObserveServer(ServerSighting{Server: "u"}); !errors.Is(err, ErrFull) {
		t.Fatalf("third server: %v, want ErrFull", err)
	}
}

// The background writer writes the inventory when it changed.
func TestInventoryPeriodicWrite(t *testing.T) {
	dir := t.TempDir()
	m, err := NewMemory(Options{DataDir: dir, WriteInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.ObserveServer(ServerSighting{Server: "s", URL: "http://127.0.0.1:1/"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		inv, err := ReadInventory(dir)
		if err == nil && len(inv.Servers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inventory not written: %v %+v", err, inv)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A damaged inventory is reported and replaced, not fatal.
func TestInventoryDamaged(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, InventoryFile), []byte("{"), 0o600)
	var reported error
	m, err := NewMemory(Options{DataDir: dir, WriteInterval: -1, OnError: func(err error) { reported = err }})
	if err != nil {
		t.Fatalf("NewMemory over a damaged inventory: %v", err)
	}
	if reported == nil {
		t.Fatal("damaged inventory not reported")
	}
	m.ObserveServer(ServerSighting{Server: "s"})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if inv, err := ReadInventory(dir); err != nil || len(inv.Servers) != 1 {
		t.Fatalf("after Close: %+v %v", inv, err)
	}
}
