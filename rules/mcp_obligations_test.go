package rules

import (
	"slices"
	"testing"
)

func ids[T any](xs []T, id func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

func redIDs(rs []Redaction) []string  { return ids(rs, func(r Redaction) string { return r.ID }) }
func rateIDs(rs []RateLimit) []string { return ids(rs, func(r RateLimit) string { return r.ID }) }

func TestMCPObligations(t *testing.T) {
	path := writePolicy(t, `mode: report
mcp:
  default: deny
  tools:
    - allow: "github.*"
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      id: aws-keys
    - pattern: "ghp_[A-Za-z0-9]{36}"
      in: arguments
      tools: "github.*"
      id: gh-token
    - pattern: "secret-[0-9]+"
      in: [results]
      tools: ["jira.*", "github.get_*"]
      agents: [builder]
  rate_limits:
    - tools: "github.search_*"
      limit: 30/m
      per: agent
      id: gh-search
    - limit: 100/s
      burst: 10
      per: server
      mode: enforce
      id: global
    - tools: "*.search_code"
      limit: 2/h
      per: tool
      agents: [builder]
`, nil)
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		agent, server, tool string
		action              Action
		args, results       []string
		rates               []string
	}{
		{"", "github", "search_code", Allow, []string{"aws-keys", "gh-token"}, []string{"aws-keys"}, []string{"gh-search", "global"}},
		{"builder", "github", "search_code", Allow, []string{"aws-keys", "gh-token"}, []string{"aws-keys"}, []string{"gh-search", "global", path + ":27"}},
		{"builder", "github", "get_file", Allow, []string{"aws-keys", "gh-token"}, []string{"aws-keys", path + ":13"}, []string{"global"}},
		{"builder", "github", "SEARCH_issues", Allow, []string{"aws-keys", "gh-token"}, []string{"aws-keys"}, []string{"gh-search", "global"}}, // obligations match loosely
		// Obligations apply whatever the verdict (a deny in report mode still passes).
		{"builder", "jira", "create_issue", Deny, []string{"aws-keys"}, []string{"aws-keys", path + ":13"}, []string{"global"}},
		{"", "", "search_code", Deny, []string{"aws-keys"}, []string{"aws-keys"}, []string{"global"}},
	}
	for _, tt := range tests {
		v := e.MCP().Tool(ToolCall{Agent: tt.agent, Server: tt.server, Tool: tt.tool})
		if v.Action != tt.action {
			t.Errorf("%s %s.%s: %v, want %v", tt.agent, tt.server, tt.tool, v.Action, tt.action)
		}
		if got := redIDs(v.Redactions); !slices.Equal(got, tt.args) {
			t.Errorf("%s %s.%s: argument redactions %q, want %q", tt.agent, tt.server, tt.tool, got, tt.args)
		}
		if got := redIDs(e.MCP().ResultRedactions(tt.agent, tt.server, tt.tool)); !slices.Equal(got, tt.results) {
			t.Errorf("%s %s.%s: result redactions %q, want %q", tt.agent, tt.server, tt.tool, got, tt.results)
		}
		if got := rateIDs(v.RateLimits); !slices.Equal(got, tt.rates) {
			t.Errorf("%s %s.%s: rate limits %q, want %q", tt.agent, tt.server, tt.tool, got, tt.rates)
		}
	}

	v := e.MCP().Tool(ToolCall{Agent: "builder", Server: "github", Tool: "search_code"})
	aws, gh := v.Redactions[0], v.Redactions[1]
	if !aws.Arguments || !aws.Results || aws.Marker != "[REDACTED:aws-keys]" || aws.Source != path+":7" ||
		!aws.Pattern.MatchString("key AKIAABCDEFGHIJKLMNOP") || !gh.Arguments || gh.Results {
		t.Errorf("redactions: %+v", v.Redactions)
	}
	want := []RateLimit{
		{ID: "gh-search", Source: path + ":18", Spec: "30/m", Limit: 0.5, Burst: 30, Per: "agent", Report: true},
		{ID: "global", Source: path + ":22", Spec: "100/s", Limit: 100, Burst: 10, Per: "server"},
		{ID: path + ":27", Source: path + ":27", Spec: "2/h", Limit: 2.0 / 3600, Burst: 2, Per: "tool", Report: true},
	}
	if !slices.Equal(v.RateLimits, want) {
		t.Errorf("rate limits:\n %+v\nwant\n %+v", v.RateLimits, want)
	}
	if s := e.Stats(); s.MCPRedactions != 3 || s.MCPRateLimits != 3 || s.ToolRules != 1 {
		t.Errorf("stats %+v", s)
	}

	// A caller that appends to a shared slice gets its own copy.
	all := e.MCP().Tool(ToolCall{Server: "github", Tool: "search_code"}).Redactions
	_ = append(all, Redaction{ID: "mine"})
	if again := e.MCP().Tool(ToolCall{Server: "github", Tool: "search_code"}).Redactions; len(again) != 2 || cap(again) != len(again) {
		t.Errorf("shared slice grew: %+v", again)
	}
}

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in    string
		limit float64
		burst int
		ok    bool
	}{
		{"1/s", 1, 1, true},
		{"30/m", 0.5, 30, true},
		{"3600/h", 1, 3600, true},
		{" 5 / s", 5, 5, true},
		{"0/s", 0, 0, false},
		{"-1/s", 0, 0, false},
		{"1.5/s", 0, 0, false},
		{"1/min", 0, 0, false},
		{"1", 0, 0, false},
		{"1000000001/s", 0, 0, false},
	} {
		l, b, ok := parseRate(tt.in)
		if ok != tt.ok || l != tt.limit || b != tt.burst {
			t.Errorf("parseRate(%q) = %v %v %v, want %v %v %v", tt.in, l, b, ok, tt.limit, tt.burst, tt.ok)
		}
	}
}

func TestCanMatchEmpty(t *testing.T) {
	for re, want := range map[string]bool{
		"AKIA[0-9A-Z]{16}": false,
		"a+":               false,
		"(a|b)c":           false,
		"x{0,3}y":          false,
		"a*":               true,
		"a?":               true,
		"x{0,3}":           true,
		"":                 true,
		"^":                true,
		`\b`:               true,
		"a|":               true,
		"(?:)":             true,
		"(a*)+":            true,
	} {
		if got := canMatchEmpty(re); got != want {
			t.Errorf("canMatchEmpty(%q) = %v, want %v", re, got, want)
		}
	}
}
