package rules

import (
	"testing"
	"time"
)

func TestApproveLoadErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"approve in hosts", "hosts:\n  - approve: a.test\n", `:2: approve applies to tool rules (mcp tools) and http rules only`},
		{"approve in prompts", "mcp:\n  prompts:\n    - approve: a.b\n", `:3: approve applies to tool rules`},
		{"approve and deny", "mcp:\n  tools:\n    - approve: a.b\n      deny: a.c\n", `:4: a rule has exactly one of allow, deny or approve`},
		{"timeout on deny", "mcp:\n  tools:\n    - deny: a.b\n      timeout: 10s\n", `:4: timeout and via apply to approve rules only`},
		{"via on allow", "http:\n  - allow: \"* a.test\"\n    via: [console]\n", `:3: timeout and via apply to approve rules only`},
		{"bad timeout", "mcp:\n  tools:\n    - approve: a.b\n      timeout: soon\n", `:4: bad timeout "soon"`},
		{"timeout too short", "mcp:\n  tools:\n    - approve: a.b\n      timeout: 10ms\n", `:4: bad timeout "10ms"`},
		{"timeout too long", "mcp:\n  tools:\n    - approve: a.b\n      timeout: 48h\n", `:4: bad timeout "48h"`},
		{"unknown via", "mcp:\n  tools:\n    - approve: a.b\n      via: [slack]\n", `:4: unknown via "slack"`},
		{"empty via", "mcp:\n  tools:\n    - approve: a.b\n      via: []\n", `:4: empty list`},
		{"twice via", "mcp:\n  tools:\n    - approve: a.b\n      via: [console, console]\n", `:4: via "console" given twice`},
		{"approve report", "mcp:\n  tools:\n    - approve: a.b\n      mode: report\n", `:4: an approve rule holds what it covers: mode report`},
		{"approve important", "mcp:\n  tools:\n    - approve: a.b\n      important: true\n", `:3: important applies to deny rules only`},
		{"http elicitation", "http:\n  - approve: \"POST a.test/x\"\n    via: [elicitation]\n", `:3: via elicitation applies to tool rules only`},
	})
}

const approvePolicy = `default: allow
http:
  - approve: "POST api.example/deploy/**"
    id: deploy
    timeout: 5m
  - deny: "POST api.example/deploy/prod"
    id: no-prod
  - allow: "POST api.example/deploy/ok"
    id: deploy-ok
mcp:
  servers:
    - name: github
      url: "gh.test/mcp/**"
  tools:
    - approve: "github.merge_*"
      id: merge
      via: [console, elicitation]
    - deny: "github.merge_*"
      agents: [intern]
      id: intern-no-merge
    - allow: "github.merge_docs"
      id: docs
    - deny: "github.merge_force"
      important: true
      id: force
    - approve: "*"
      agents: [careful]
      id: careful
`

func TestApproveDecisions(t *testing.T) {
	e := mustLoad(t, approvePolicy, nil)
	tools := []struct {
		agent, tool string
		want        Action
		rule        string
	}{
		{"", "merge_pr", Approve, "merge"},
		{"", "MERGE_PR", Approve, "merge"},              // an approve matches like a deny: no spelling steps around it
		{"intern", "merge_pr", Deny, "intern-no-merge"}, // a tie: deny beats approve
		{"", "merge_docs", Allow, "docs"},               // more specific wins
		{"", "merge_force", Deny, "force"},
		{"careful", "list", Approve, "careful"},
		{"", "list", Allow, "mcp:default"},
	}
	for _, c := range tools {
		v := e.MCP().Tool(ToolCall{Agent: c.agent, Server: "github", Tool: c.tool})
		if v.Action != c.want || v.Rule != c.rule {
			t.Errorf("%s github.%s: %v by %s, want %v by %s", c.agent, c.tool, v.Action, v.Rule, c.want, c.rule)
		}
		if (v.Action == Approve) != (v.Hold != nil) {
			t.Errorf("%s github.%s: %v with hold %v", c.agent, c.tool, v.Action, v.Hold)
		}
		if v.Allowed() && v.Action == Approve {
			t.Errorf("an approve decision is Allowed")
		}
	}
	v := e.MCP().Tool(ToolCall{Server: "github", Tool: "merge_pr"})
	if h := v.Hold; h.Timeout != DefaultHoldTimeout || !h.Console || !h.Elicitation || v.Outcome() != "approve" {
		t.Errorf("merge hold: %+v, outcome %s", h, v.Outcome())
	}

	reqs := []struct {
		method, path string
		want         Action
		rule         string
	}{
		{"POST", "/deploy/x", Approve, "deploy"},
		{"post", "/DEPLOY/x", Approve, "deploy"},
		{"POST", "/deploy;a/x", Approve, "deploy"},
		{"POST", "/deploy/prod", Deny, "no-prod"},
		{"POST", "/deploy/ok", Allow, "deploy-ok"},
		{"GET", "/deploy/x", Allow, "http:default"},
	}
	for _, c := range reqs {
		d := e.HTTP().Request(Request{Host: host(t, "api.example", 443), Method: c.method, Path: c.path})
		if d.Action != c.want || d.Rule != c.rule {
			t.Errorf("%s %s: %v by %s, want %v by %s", c.method, c.path, d.Action, d.Rule, c.want, c.rule)
		}
	}
	// A method override is decided too: a GET that a server runs as POST
	// is held.
	d := e.HTTP().Request(Request{Host: host(t, "api.example", 443), Method: "GET", Path: "/deploy/x", Overrides: []string{"POST"}})
	if d.Action != Approve || d.Hold == nil || d.Hold.Timeout != 5*time.Minute || d.Hold.Elicitation {
		t.Errorf("GET overridden to POST: %+v", d)
	}
	// A deny override beats an approve.
	d = e.HTTP().Request(Request{Host: host(t, "api.example", 443), Method: "POST", Path: "/deploy/prod", Overrides: []string{"GET"}})
	if d.Action != Deny {
		t.Errorf("POST prod: %+v", d)
	}
}
