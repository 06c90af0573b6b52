package rules

import (
	"fmt"
	"strings"
	"testing"
)

// mcpBenchPolicy is a policy of realistic size: 20 servers, each with a
// few tool rules, a conditional deny, catch-alls, redactions and rate
// limits that cover every call.
func mcpBenchPolicy() string {
	var b strings.Builder
	b.WriteString("mcp:\n  servers:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "    - name: s%d\n      url: mcp%d.bench.test/v1/**\n", i, i)
	}
	b.WriteString("  tools:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "    - deny: \"s%d.delete_*\"\n    - allow: \"s%d.get_*\"\n    - allow: s%d.create_issue\n", i, i, i)
	}
	b.WriteString(`    - deny: shell.run
      when:
        - arg: /command
          matches: 'rm\s+-rf'
    - deny: "*"
      when:
        - annotation: destructiveHint
    - deny: "*.drop_*"
      important: true
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
  rate_limits:
    - limit: 100/s
      per: agent
`)
	return b.String()
}

func mcpBenchEngine(tb testing.TB) *Engine {
	e, err := Parse("bench.yaml", []byte(mcpBenchPolicy()))
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

var mcpCases = []struct {
	name string
	q    ToolCall
	rule string
}{
	{"miss", ToolCall{Agent: "a", Server: "s7", Tool: "list_things"}, "mcp:default"},
	{"hit-exact", ToolCall{Agent: "a", Server: "s7", Tool: "create_issue"}, "bench.yaml:"},
	{"hit-glob", ToolCall{Agent: "a", Server: "s7", Tool: "delete_project"}, "bench.yaml:"},
	{"condition", ToolCall{Agent: "a", Server: "shell", Tool: "run", Args: argMap{"/command": str("rm -rf /")}}, "bench.yaml:"},
	{"annotation", ToolCall{Agent: "a", Server: "s7", Tool: "wipe", Annotations: HintDestructive}, "bench.yaml:"},
}

func TestToolNoAlloc(t *testing.T) {
	e := mcpBenchEngine(t)
	for _, c := range mcpCases {
		v := e.MCP().Tool(c.q)
		if !strings.HasPrefix(v.Rule, c.rule) || len(v.Redactions) != 1 || len(v.RateLimits) != 1 {
			t.Fatalf("%s: %+v", c.name, v)
		}
		noAllocs(t, c.name+": Tool", func() { e.MCP().Tool(c.q) })
	}
	// No obligations at all, and no mcp section at all.
	for _, e := range []*Engine{mustLoad(t, "mcp:\n  tools:\n    - deny: a.b\n", nil), mustLoad(t, "default: allow\n", nil)} {
		q := ToolCall{Server: "x", Tool: "y"}
		noAllocs(t, "Tool without obligations", func() { e.MCP().Tool(q) })
	}
	h := host(t, "mcp7.bench.test", 443)
	other := host(t, "www.bench.test", 443)
	noAllocs(t, "MCPServer", func() { e.MCP().Server(h, "/v1/mcp") })
	noAllocs(t, "Tunnel", func() { e.Tunnel("a", h); e.Tunnel("a", other) })
	noAllocs(t, "ResultRedactions", func() { e.MCP().ResultRedactions("a", "s7", "get_x") })
}

func BenchmarkTool(b *testing.B) {
	e := mcpBenchEngine(b)
	for _, c := range mcpCases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.MCP().Tool(c.q)
			}
		})
	}
}

func BenchmarkMCPServer(b *testing.B) {
	e := mcpBenchEngine(b)
	h := host(b, "mcp7.bench.test", 443)
	b.ReportAllocs()
	for b.Loop() {
		e.MCP().Server(h, "/v1/mcp")
	}
}
