package state

import "testing"

// Egress pins are pinned like tools, but listed as the server's egress,
// never as its tools.
func TestEgressPins(t *testing.T) {
	m, err := NewMemory(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ps, pt := EgressPin("files", "fetch", "api.example")
	if got := m.CheckPin(ps, pt, Hash{1}); got != PinNew {
		t.Fatalf("first egress: %v", got)
	}
	if got := m.CheckPin(ps, pt, Hash{1}); got != PinSame {
		t.Fatalf("second egress: %v", got)
	}
	m.CheckPin("files", "fetch", Hash{2})
	inv := m.Snapshot()
	if len(inv.Servers) != 1 {
		t.Fatalf("servers: %+v", inv.Servers)
	}
	s := inv.Servers[0]
	if s.Name != "files" || len(s.Tools) != 1 || s.Tools[0].Name != "fetch" || len(s.Egress) != 1 ||
		s.Egress[0].Tool != "fetch" || s.Egress[0].Host != "api.example" {
		t.Fatalf("inventory: %+v", s)
	}
	for _, tt := range []struct{ server, tool string }{{"files", "fetch -> x"}, {"a b egress", "t -> h"}, {"files egress", "no arrow"}} {
		if _, _, _, ok := SplitEgressPin(tt.server, tt.tool); ok {
			t.Errorf("SplitEgressPin(%q, %q) took it for an egress pin", tt.server, tt.tool)
		}
	}
}
