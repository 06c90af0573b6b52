package state

import "sync"

// Tool hints: the annotations a server last listed for a tool (the
// explicit-true hints, as a bit set the policy defines), so that a
// tools/call, which does not carry them, is decided with them. They are
// the server's word and change with every tools/list; they are kept in
// memory only.

// toolTable is what a server listed for its tools that a later
// tools/call needs: hints (here) and parameter declarations (params.go).
type toolTable struct {
	hints  hintTable
	params paramTable
}

type hintKey struct{ server, tool string }

type hintTable struct{ m sync.Map } // hintKey → uint8

// SetToolHints answers Store.SetToolHints.
func (t *toolTable) SetToolHints(server, tool string, hints uint8) {
	if old, ok := t.hints.m.Load(hintKey{server, tool}); ok && old.(uint8) == hints {
		return
	}
	t.hints.m.Store(hintKey{server, tool}, hints)
}

// ToolHints answers Store.ToolHints: 0 for a tool never listed.
func (t *toolTable) ToolHints(server, tool string) uint8 {
	if v, ok := t.hints.m.Load(hintKey{server, tool}); ok {
		return v.(uint8)
	}
	return 0
}
