package rules

import "testing"

// The table lists the keys in the policy language's order: errors print
// this list, and every key parses through its entry.
func TestSectionTable(t *testing.T) {
	const want = "default, mode, ports, agents, free_agent_names, hosts, ips, lists, resolve, intercept, passthrough, http, mcp, dns, quotas"
	if got := sectionKeys(""); got != want {
		t.Errorf("sectionKeys = %q, want %q", got, want)
	}
	if got, w := sectionKeys("or"), "default, mode, ports, agents, free_agent_names, hosts, ips, lists, resolve, intercept, passthrough, http, mcp, dns or quotas"; got != w {
		t.Errorf("sectionKeys(or) = %q, want %q", got, w)
	}
	for _, s := range sections {
		if s.parse == nil {
			t.Errorf("section %s has no parse", s.key)
		}
		if got, ok := sectionFor(s.key); !ok || got.key != s.key {
			t.Errorf("sectionFor(%s) = %v, %v", s.key, got, ok)
		}
	}
	if _, ok := sectionFor("credentials"); ok {
		t.Error("sectionFor found an unregistered key")
	}
	// Steps run by phase, then in order: rule sources are numbered, and
	// duplicate ids reported, in this order.
	for i := 1; i < len(steps); i++ {
		a, b := steps[i-1], steps[i]
		if a.phase > b.phase || a.phase == b.phase && a.at > b.at {
			t.Errorf("step %d (phase %d at %d) after step %d (phase %d at %d)", i, b.phase, b.at, i-1, a.phase, a.at)
		}
	}
}

// Two files claiming one key is a programming error, found at start-up.
func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering hosts twice did not panic")
		}
	}()
	register(section{key: "hosts", rank: rankHosts})
}
