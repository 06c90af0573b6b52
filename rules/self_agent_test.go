package rules

import (
	"net/netip"
	"strings"
	"testing"
)

// agentg's own identity cannot be claimed by a client, whatever the
// policy lets clients name themselves, nor defined by a policy.
func TestSelfAgentReserved(t *testing.T) {
	e, err := Parse("p.yaml", []byte("free_agent_names: true\nagents:\n  - name: builder\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AgentAt(Claim{User: SelfAgent, Src: netip.MustParseAddr("127.0.0.1")}); err == nil {
		t.Fatal("a client claimed agentg's own identity")
	}
	if a, err := e.AgentAt(Claim{User: "other", Src: netip.MustParseAddr("127.0.0.1")}); err != nil || a != "other" {
		t.Fatalf("a free name: %q %v", a, err)
	}
	_, err = Parse("p.yaml", []byte("agents:\n  - name: agentg\n    cidrs: [127.0.0.0/8]\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:2") || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("defining agentg: %v", err)
	}
}
