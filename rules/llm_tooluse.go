package rules

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// The llm section's tool-use guard setting (issue 18):
//
//	llm:
//	  tool_use: enforce   # off (default) | report | enforce
//
// With enforce, each tool call a model's answer asks for is decided by
// the mcp tool rules (MCPRules.Tool, through the model-visible name's
// mapping to SERVER.TOOL) before the agent sees the answer: a denied one
// is struck from it, an approve rule holds it. With report, the same
// decisions are logged and the answer passes unchanged. The decisions
// themselves are the mcp section's: this setting only says whether they
// apply to model answers.

// ToolUse is the llm section's tool_use setting.
type ToolUse uint8

const (
	ToolUseOff     ToolUse = iota // model answers pass undecided (the default)
	ToolUseReport                 // decided and logged; the answer passes unchanged
	ToolUseEnforce                // decided; denied calls struck, approve rules hold
)

// String is the setting as the policy writes it.
func (t ToolUse) String() string {
	switch t {
	case ToolUseReport:
		return "report"
	case ToolUseEnforce:
		return "enforce"
	}
	return "off"
}

// llmGuardSpec is what the llm section's tool_use and quotas keys say,
// kept apart from llmSpec so the guard's keys live in their own files.
type llmGuardSpec struct {
	toolUse     ToolUse
	toolUseLine int
	quotas      []llmQuotaSpec
}

// llmGuardKey parses the llm keys the tool-use guard and the quotas own;
// ok is false for any other key.
func (p *parser) llmGuardKey(k, v *yaml.Node, pol *policy) (ok bool, err error) {
	g, _ := pol.specs.get("llm.guard").(*llmGuardSpec)
	if g == nil {
		g = &llmGuardSpec{}
		pol.specs.set("llm.guard", g)
	}
	switch k.Value {
	case "tool_use":
		s, err := p.oneOf(v, "off", "report", "enforce")
		if err != nil {
			return true, err
		}
		g.toolUse = map[string]ToolUse{"off": ToolUseOff, "report": ToolUseReport, "enforce": ToolUseEnforce}[s]
		g.toolUseLine = k.Line
		return true, nil
	case "quotas":
		g.quotas, err = p.llmQuotas(v)
		return true, err
	}
	return false, nil
}

// llmGuard is the compiled form of the guard's keys, held by LLM.
type llmGuard struct {
	toolUse    ToolUse
	toolUseSrc string
	quotas     []LLMQuota
}

// compileLLMGuard compiles the guard's keys into l.
func compileLLMGuard(c *compiler, l *LLM) error {
	g, _ := c.pol.specs.get("llm.guard").(*llmGuardSpec)
	if g == nil {
		return nil
	}
	l.guard.toolUse = g.toolUse
	l.guard.toolUseSrc = c.pol.file
	if g.toolUseLine > 0 {
		l.guard.toolUseSrc = fmt.Sprintf("%s:%d", c.pol.file, g.toolUseLine)
	}
	return c.compileLLMQuotas(l, g.quotas)
}

// ToolUse is the section's tool_use setting, and where it is written.
func (l *LLM) ToolUse() (ToolUse, string) { return l.guard.toolUse, l.guard.toolUseSrc }

// llmGuardWarnings warns of a tool-use guard with nothing to apply: no
// mcp tools rule and mcp default allow decide every call allow, so
// tool_use strikes nothing.
func (w *warner) llmGuardWarnings() {
	l := w.e.LLM()
	tu, src := l.ToolUse()
	if tu == ToolUseOff {
		return
	}
	m := w.e.MCP()
	if len(m.tools.byServer) == 0 && len(m.tools.wild) == 0 && m.Default.Action == Allow {
		w.add(src, "llm tool_use: %s, and no mcp tools rule or mcp default: deny decides a tool call: every model tool call is allowed", tu)
	}
}
