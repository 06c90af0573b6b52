package proxy

import (
	"strings"

	"github.com/agentg/agentg/rules"
)

// mapToolName maps the name a model sees for a tool to the SERVER.TOOL
// the mcp section names: by the policy's llm.tool_names and the
// conventions (rules.ToolNames.Resolve, the mapping the MCP guard's link
// to model turns reads too), else by the common conventions over the
// policy's servers: mcp__SERVER__TOOL (Claude Code's), SERVER__TOOL,
// SERVER_TOOL and SERVER.TOOL. found is false when nothing names a known
// server; ambiguous when more than one convention reading does (servers
// "a" and "a_b" both read "a_b_c"): such a name cannot be decided as one
// tool. Resolve says only "not one", so the ambiguity is told here.
func mapToolName(eng *rules.Engine, name string) (server, tool string, found, ambiguous bool) {
	if st, ok := eng.ToolNames().Resolve(name, nil); ok {
		return st.Server, st.Tool, true, false
	}
	n := 0
	for _, s := range eng.MCP().Servers() {
		for _, t := range conventionalTools(name, s.Name) {
			if n > 0 && s.Name == server && t == tool {
				continue
			}
			server, tool, n = s.Name, t, n+1
		}
	}
	if n > 1 {
		return "", "", false, true
	}
	return server, tool, n == 1, false
}

// conventionalTools are the tools of server that name spells by a
// convention.
func conventionalTools(name, server string) []string {
	if rest, ok := strings.CutPrefix(name, "mcp__"); ok {
		if t, ok := strings.CutPrefix(rest, server+"__"); ok && t != "" {
			return []string{t}
		}
		return nil
	}
	r, ok := strings.CutPrefix(name, server)
	if !ok {
		return nil
	}
	// "__" first: SERVER__TOOL is not SERVER_ and a tool named "_TOOL".
	for _, sep := range []string{"__", "_", "."} {
		if t, ok := strings.CutPrefix(r, sep); ok && t != "" {
			return []string{t}
		}
	}
	return nil
}
