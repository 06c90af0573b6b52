package rules

import (
	"strings"
	"testing"
	"time"
)

const toolNamesPolicy = `
mcp:
  servers:
    - name: jira
      url: jira.example.com/mcp
    - name: my-docs
      url: docs.example.com/mcp
    - name: gh
      url: gh.example.com/mcp
    - name: wiki
      endpoint: https://wiki.example.com/mcp
      prefix: w
  unrequested: deny
  link_window: 90s
llm:
  tool_names:
    create_ticket: jira.create_issue
    "atl_*": jira.*
    "gh-*-v2": gh.*
    "search": my-docs.search
`

func TestToolNames(t *testing.T) {
	e := mustLoad(t, toolNamesPolicy, nil)
	tn := e.ToolNames()
	only := func(st ServerTool) bool { return st.Tool == "create_issue" || st == ServerTool{"gh", "list_repos"} }
	for _, tt := range []struct {
		name string
		st   ServerTool
		want bool
	}{
		{"mcp__jira__create_issue", ServerTool{"jira", "create_issue"}, true},
		{"jira_create_issue", ServerTool{"jira", "create_issue"}, true},
		{"jira__create_issue", ServerTool{"jira", "create_issue"}, true},
		{"jira.create_issue", ServerTool{"jira", "create_issue"}, true},
		{"mcp__my-docs__find", ServerTool{"my-docs", "find"}, true},
		{"my-docs.find", ServerTool{"my-docs", "find"}, true},
		{"mcp__jira__create_issue", ServerTool{"gh", "create_issue"}, false},
		{"jira_create_issue", ServerTool{"jira", "create"}, false},
		{"jiracreate_issue", ServerTool{"jira", "create_issue"}, false},
		{"create_issue", ServerTool{"jira", "create_issue"}, false}, // bare, and gh and my-docs have it too
		{"list_repos", ServerTool{"gh", "list_repos"}, true},        // bare, gh's alone
		{"create_ticket", ServerTool{"jira", "create_issue"}, true},
		{"atl_transition", ServerTool{"jira", "transition"}, true},
		{"atl_", ServerTool{"jira", ""}, false},
		{"gh-star-v2", ServerTool{"gh", "star"}, true},
		{"search", ServerTool{"my-docs", "search"}, true},
		{"search", ServerTool{"gh", "search"}, false}, // the entry's word over the bare name
		{"jira_create_issue", ServerTool{"", "create_issue"}, false},
		{"w.page", ServerTool{"wiki", "page"}, true}, // the gateway's catalogue name
		{"w_page", ServerTool{"wiki", "page"}, true},
		{"mcp__agentg__w_page", ServerTool{"wiki", "page"}, true},
		{"mcp__agentg__w_page", ServerTool{"wiki", "other"}, false},
		{"w.page", ServerTool{"jira", "page"}, false},
	} {
		if got := tn.Names(tt.name, tt.st, only); got != tt.want {
			t.Errorf("Names(%q, %v) = %v, want %v", tt.name, tt.st, got, tt.want)
		}
	}
	has := func(st ServerTool) bool { return st.Tool == "list_repos" && st.Server == "gh" || st.Tool == "both" }
	for _, tt := range []struct {
		name string
		want ServerTool
		ok   bool
	}{
		{"mcp__jira__create_issue", ServerTool{"jira", "create_issue"}, true},
		{"jira_create_issue", ServerTool{"jira", "create_issue"}, true},
		{"mcp__my-docs__find", ServerTool{"my-docs", "find"}, true},
		{"create_ticket", ServerTool{"jira", "create_issue"}, true},
		{"atl_x", ServerTool{"jira", "x"}, true},
		{"list_repos", ServerTool{"gh", "list_repos"}, true},
		{"both", ServerTool{}, false}, // every server has it
		{"nothing", ServerTool{}, false},
		{"mcp__other__x", ServerTool{}, false},
		{"w.page", ServerTool{"wiki", "page"}, true},
		{"mcp__agentg__w_page", ServerTool{"wiki", "page"}, true},
	} {
		got, ok := tn.Resolve(tt.name, has)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("Resolve(%q) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	u := e.MCP().Unrequested
	if u.Window != 90*time.Second || u.Decision.Action != Deny || u.Decision.Allowed() || u.Decision.Rule != "mcp:unrequested" ||
		u.Decision.Source == "" || u.Decision.Source[len(u.Decision.Source)-3:] != ":13" {
		t.Errorf("unrequested %+v", u)
	}
}

func TestUnrequestedDefaults(t *testing.T) {
	for _, tt := range []struct {
		policy  string
		action  Action
		allowed bool
	}{
		{"default: allow\n", Deny, true}, // report: a deny let through
		{"mcp:\n  unrequested: report\n", Deny, true},
		{"mcp:\n  unrequested: approve\n", Approve, false},
		{"mcp:\n  unrequested: deny\n", Deny, false},
		{"mode: report\nmcp:\n  unrequested: deny\n", Deny, true},
	} {
		e := mustLoad(t, tt.policy, nil)
		u := e.MCP().Unrequested
		if u.Decision.Action != tt.action || u.Decision.Allowed() != tt.allowed || u.Window != DefaultLinkWindow {
			t.Errorf("%q: %+v", tt.policy, u)
		}
		if tt.action == Approve && u.Decision.Hold == nil {
			t.Errorf("%q: an approve without a hold", tt.policy)
		}
		if len(e.ToolNames().servers) != 0 {
			t.Errorf("%q: servers %v", tt.policy, e.ToolNames().servers)
		}
	}
}

func TestToolNamesLoadErrors(t *testing.T) {
	srv := "mcp:\n  servers:\n    - name: jira\n      url: jira.example.com/mcp\n"
	checkLoadErrors(t, []loadErrorCase{
		{"not a map", srv + "llm:\n  tool_names: [a]\n", ":6: llm tool_names must be a mapping"},
		{"two stars", srv + "llm:\n  tool_names:\n    \"a*b*\": jira.x\n", ":7: bad tool name"},
		{"no dot", srv + "llm:\n  tool_names:\n    a: jira\n", ":7: bad target"},
		{"star without star", srv + "llm:\n  tool_names:\n    a: jira.*\n", ":7: bad target"},
		{"partial star", srv + "llm:\n  tool_names:\n    \"a*\": jira.x*\n", ":7: bad target"},
		{"not a scalar", srv + "llm:\n  tool_names:\n    a: [jira.x]\n", ":7: expected a single value"},
		{"duplicate", srv + "llm:\n  tool_names:\n    a: jira.x\n    a: jira.y\n", ":8: duplicate key"},
		{"unknown server", srv + "llm:\n  tool_names:\n    a: confluence.x\n", ":7: llm tool_names maps \"a\" to server \"confluence\""},
		{"unrequested value", "mcp:\n  unrequested: maybe\n", ":2: \"maybe\" is not one of"},
		{"window", "mcp:\n  link_window: 0s\n", ":2: bad duration"},
		{"window long", "mcp:\n  link_window: 48h\n", ":2: bad duration"},
	})
}

func TestUnrequestedWarning(t *testing.T) {
	for _, tt := range []struct {
		policy string
		warn   bool
	}{
		{"mcp:\n  unrequested: deny\n", true},
		{"mcp:\n  unrequested: approve\n", true},
		{"mcp:\n  unrequested: report\n", false},
		{"mcp:\n  unrequested: deny\nllm:\n  unparsed: deny\n", false},
	} {
		var got bool
		for _, w := range mustLoad(t, tt.policy, nil).Warnings() {
			got = got || strings.Contains(w.Text, "mcp unrequested")
		}
		if got != tt.warn {
			t.Errorf("%q: warned %v, want %v", tt.policy, got, tt.warn)
		}
	}
}
