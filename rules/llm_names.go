package rules

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Tool names on the model path (issue 18): the names a model sees for
// MCP tools, mapped to the SERVER.TOOL the mcp section names. An agent
// offers its model the tools of its MCP servers under names of its own
// making: Claude Code's mcp__SERVER__TOOL, SERVER_TOOL, SERVER.TOOL, or
// the bare tool name. The MCP guard uses the mapping to tie a tools/call
// to the model turn that asked for it; the tool-use guard to decide a
// model's tool call by the MCP tool rules.
//
// The mapping lives in the llm section (llm.tool_names) because what it
// maps is the model path's vocabulary, and the llm section is where a
// deployment describes its model path; the mcp section names the servers
// and tools the targets refer to.
//
//	llm:
//	  tool_names:                  # first matching entry wins; conventions after
//	    create_ticket: jira.create_issue
//	    "atl_*": jira.*            # '*' in the target is what '*' matched
//
// A name no entry covers is read by the conventions: mcp__SERVER__TOOL
// (Claude Code's; a server name is letters, digits, '_' and '-', which
// Claude Code keeps as they are), SERVER_TOOL, SERVER__TOOL, SERVER.TOOL
// for every server mcp.servers names, and the bare TOOL when exactly one
// server is known to have it (the caller knows which tools each server
// listed). A name an entry covers is read by that entry only: an entry
// is the deployment's word over a convention.

// toolNameSpec is one tool_names entry as parsed.
type toolNameSpec struct {
	line           int
	prefix, suffix string // the model's name: prefix, '*', suffix (star) or prefix alone
	star           bool
	server         string
	tool           string // "*": the text the name's '*' matched
}

// toolNameEntry is one compiled entry.
type toolNameEntry struct {
	toolNameSpec
	source string
}

// ToolNames is the compiled mapping: Engine.ToolNames returns it.
type ToolNames struct {
	entries []toolNameEntry
	servers []string // every mcp.servers name, in policy order
	// catalogue is, for each server the gateway serves, its prefix in
	// the gateway's catalogue ("" for none): a model behind the gateway
	// sees PREFIX.TOOL.
	catalogue map[string]string
}

// ServerTool is an MCP tool by the policy's names.
type ServerTool struct{ Server, Tool string }

func (st ServerTool) String() string { return st.Server + "." + st.Tool }

// toolNamesKey is the Engine.views slot of the compiled mapping.
const toolNamesKey = "llm.tool_names"

// ToolNames returns the policy's mapping of model-facing tool names; with
// no llm.tool_names it holds the conventions alone.
func (e *Engine) ToolNames() *ToolNames {
	if t, ok := e.views.get(toolNamesKey).(*ToolNames); ok {
		return t
	}
	return &ToolNames{} // an engine not compiled by compile (tests)
}

// parseToolNames reads llm.tool_names: a mapping of model-facing names
// (one '*' at most) to SERVER.TOOL targets.
func (p *parser) parseToolNames(v *yaml.Node) ([]toolNameSpec, error) {
	if v.Kind != yaml.MappingNode {
		return nil, p.errf(v, "llm tool_names must be a mapping of NAME: SERVER.TOOL (NAME may hold one '*', which TOOL may repeat as '*')")
	}
	var out []toolNameSpec
	err := p.eachKey(v, func(k, t *yaml.Node) error {
		s := toolNameSpec{line: k.Line}
		name := k.Value
		if name == "" || strings.Count(name, "*") > 1 {
			return p.errf(k, "bad tool name %q in llm tool_names (want a name with at most one '*')", name)
		}
		s.prefix, s.suffix, s.star = strings.Cut(name, "*")
		target, err := p.scalar(t)
		if err != nil {
			return err
		}
		server, tool, ok := strings.Cut(target, ".")
		if !ok || server == "" || tool == "" {
			return p.errf(t, "bad target %q for tool name %q (want SERVER.TOOL, SERVER as mcp.servers names it)", target, name)
		}
		if strings.Contains(tool, "*") && (tool != "*" || !s.star) {
			return p.errf(t, "bad target %q for tool name %q (a target's tool may be '*' alone, standing for what the name's '*' matched)", target, name)
		}
		s.server, s.tool = server, tool
		out = append(out, s)
		return nil
	})
	return out, err
}

// compileToolNames checks each entry's server against mcp.servers and
// stores the mapping; it runs for every policy (the conventions need the
// servers even without an llm section).
func compileToolNames(c *compiler, specs []toolNameSpec) error {
	t := &ToolNames{}
	for _, b := range c.e.mcp.servers.list {
		t.servers = append(t.servers, b.Name)
		if b.Served() {
			if t.catalogue == nil {
				t.catalogue = map[string]string{}
			}
			t.catalogue[b.Name] = b.Prefix
		}
	}
	for _, s := range specs {
		src := fmt.Sprintf("%s:%d", c.pol.file, s.line)
		if _, ok := c.e.mcp.servers.defined[s.server]; !ok {
			return fmt.Errorf("load policy %s: llm tool_names maps %q to server %q, which no mcp.servers entry names", src, s.prefix+map[bool]string{true: "*"}[s.star]+s.suffix, s.server)
		}
		t.entries = append(t.entries, toolNameEntry{toolNameSpec: s, source: src})
	}
	c.e.views.set(toolNamesKey, t)
	return nil
}

// entry returns the first entry covering name and the tool it maps to.
func (t *ToolNames) entry(name string) (ServerTool, bool) {
	for i := range t.entries {
		e := &t.entries[i]
		if !e.star {
			if name == e.prefix {
				return ServerTool{e.server, e.tool}, true
			}
			continue
		}
		if len(name) > len(e.prefix)+len(e.suffix) && strings.HasPrefix(name, e.prefix) && strings.HasSuffix(name, e.suffix) {
			tool := e.tool
			if tool == "*" {
				tool = name[len(e.prefix) : len(name)-len(e.suffix)]
			}
			return ServerTool{e.server, tool}, true
		}
	}
	return ServerTool{}, false
}

// Names reports whether a model's tool call named name is a call of
// st. has reports whether a server is known to have a tool (the tools
// it listed), for the bare-name convention: the bare tool name names st
// when no other server of the policy is known to have that tool (st's
// server has it: the call is to it). nil has: the bare name never names
// a tool.
func (t *ToolNames) Names(name string, st ServerTool, has func(ServerTool) bool) bool {
	if to, ok := t.entry(name); ok {
		return to == st
	}
	if st.Server == "" {
		// MCP on a host no servers entry names: no convention spells
		// a server the policy does not name.
		return false
	}
	if conventional(name, st.Server, st.Tool) {
		return true
	}
	if p, ok := t.catalogue[st.Server]; ok && catalogued(name, p, st.Tool) {
		return true
	}
	if name != st.Tool || has == nil {
		return false
	}
	for _, s := range t.servers {
		if s != st.Server && has(ServerTool{s, st.Tool}) {
			return false
		}
	}
	return true
}

// conventional reports whether name spells server's tool by a convention.
func conventional(name, server, tool string) bool {
	if rest, ok := strings.CutPrefix(name, "mcp__"); ok {
		r, ok := strings.CutPrefix(rest, server+"__")
		return ok && r == tool
	}
	r, ok := strings.CutPrefix(name, server)
	return ok && (r == "_"+tool || r == "__"+tool || r == "."+tool)
}

// catalogued reports whether name is the gateway's catalogue name of a
// tool (PREFIX.TOOL, or TOOL with no prefix) as a client of the gateway
// shows it to its model: as it is, or with the dots a tool name may not
// hold as '_', perhaps under the client's own mcp__NAME__ (Claude Code's
// name for the gateway, whatever it is).
func catalogued(name, prefix, tool string) bool {
	if rest, ok := strings.CutPrefix(name, "mcp__"); ok {
		if _, after, ok := strings.Cut(rest, "__"); ok {
			name = after
		}
	}
	want := tool
	if prefix != "" {
		want = prefix + "." + tool
	}
	return name == want || name == strings.ReplaceAll(want, ".", "_")
}

// Resolve maps a model-facing tool name to the MCP tool it names: by the
// first entry covering it, else by the conventions over the policy's
// servers (has reports whether a server is known to have a tool; nil:
// only the prefixed conventions apply). ok is false when the name names
// no tool, or more than one.
func (t *ToolNames) Resolve(name string, has func(ServerTool) bool) (st ServerTool, ok bool) {
	if to, ok := t.entry(name); ok {
		return to, true
	}
	n := 0
	for _, s := range t.servers {
		cands := candidates(name, s)
		if p, ok := t.catalogue[s]; ok && p != "" {
			cands = append(cands, catalogueCandidates(name, s, p)...)
		}
		for _, cand := range cands {
			if n > 0 && cand == st {
				continue
			}
			st, n = cand, n+1
		}
	}
	if n == 0 && has != nil {
		for _, s := range t.servers {
			if c := (ServerTool{s, name}); has(c) {
				st, n = c, n+1
			}
		}
	}
	return st, n == 1
}

// candidates are the tools of server that name could spell by a
// convention.
func candidates(name, server string) []ServerTool {
	if rest, ok := strings.CutPrefix(name, "mcp__"); ok {
		if tool, ok := strings.CutPrefix(rest, server+"__"); ok && tool != "" {
			return []ServerTool{{server, tool}}
		}
		return nil
	}
	r, ok := strings.CutPrefix(name, server)
	if !ok {
		return nil
	}
	for _, sep := range [3]string{"__", "_", "."} {
		if tool, ok := strings.CutPrefix(r, sep); ok && tool != "" {
			return []ServerTool{{server, tool}}
		}
	}
	return nil
}

// catalogueCandidates are the tools of server, whose gateway prefix is
// prefix, that name could spell as a catalogue name (catalogued).
func catalogueCandidates(name, server, prefix string) []ServerTool {
	if rest, ok := strings.CutPrefix(name, "mcp__"); ok {
		if _, after, ok := strings.Cut(rest, "__"); ok {
			name = after
		}
	}
	for _, sep := range [2]string{".", "_"} {
		if tool, ok := strings.CutPrefix(name, prefix+sep); ok && tool != "" {
			return []ServerTool{{server, tool}}
		}
	}
	return nil
}
