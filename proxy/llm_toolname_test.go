package proxy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agentg/agentg/rules"
)

func TestMapToolName(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(p, []byte(`
mcp:
  servers:
    - name: jira
      url: "jira.example/mcp"
    - name: a
      url: "a.example/mcp"
    - name: a_b
      url: "ab.example/mcp"
`), 0o644)
	eng, err := rules.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, server, tool string
		found, ambiguous   bool
	}{
		{"mcp__jira__create_issue", "jira", "create_issue", true, false},
		{"jira_create_issue", "jira", "create_issue", true, false},
		{"jira__create_issue", "jira", "create_issue", true, false},
		{"jira.create_issue", "jira", "create_issue", true, false},
		{"jira.a.b", "jira", "a.b", true, false},
		{"mcp__nosuch__x", "", "", false, false},
		{"mcp__jira__", "", "", false, false},
		{"get_weather", "", "", false, false},
		{"jira", "", "", false, false},
		{"jiraX_y", "", "", false, false},
		{"a_b_c", "", "", false, true}, // a.b_c or a_b.c
		{"a_x", "a", "x", true, false},
	} {
		s, tl, found, amb := mapToolName(eng, c.name)
		if s != c.server || tl != c.tool || found != c.found || amb != c.ambiguous {
			t.Errorf("mapToolName(%q) = %q %q %v %v, want %q %q %v %v", c.name, s, tl, found, amb, c.server, c.tool, c.found, c.ambiguous)
		}
	}
}
