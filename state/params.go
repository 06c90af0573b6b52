package state

import "sync"

// Tool parameter headers: the parameters a server's tools/list declared
// with x-mcp-header (2026-07-28), which a client mirrors into
// Mcp-Param-{Name} headers, so that the guard can check a tools/call's
// headers against its body. Like hints they are the server's word as last
// listed, and are kept in memory only.

// ParamHeader is one declared parameter: the header name part (as
// declared; header names compare without regard to case) and the JSON
// Pointer of the parameter in the call's arguments.
type ParamHeader struct {
	Name    string
	Pointer string
}

// ToolParams are a tool's parameter header declarations. Invalid, when
// set, says why the declarations break the specification's constraints;
// a conforming client then must not use the tool, and its headers cannot
// be checked.
type ToolParams struct {
	Headers []ParamHeader
	Invalid string
}

type paramTable struct{ m sync.Map } // hintKey → ToolParams

// SetToolParams answers Store.SetToolParams.
func (t *toolTable) SetToolParams(server, tool string, p ToolParams) {
	if len(p.Headers) == 0 && p.Invalid == "" {
		t.params.m.Delete(hintKey{server, tool})
		return
	}
	t.params.m.Store(hintKey{server, tool}, p)
}

// ToolParams answers Store.ToolParams: false for a tool never listed, or listed
// without declarations.
func (t *toolTable) ToolParams(server, tool string) (ToolParams, bool) {
	if v, ok := t.params.m.Load(hintKey{server, tool}); ok {
		return v.(ToolParams), true
	}
	return ToolParams{}, false
}
