package state

import "sync"

// Tool hints: the annotations a server last listed for a tool (the
// explicit-true hints, as a bit set the policy defines), so that a
// tools/call, which does not carry them, is decided with them. They are
// the server's word and change with every tools/list; they are kept in
// memory only.

type hintKey struct{ server, tool string }

type hintTable struct{ m sync.Map } // hintKey → uint8

// SetToolHints implements Store.
func (m *Memory) SetToolHints(server, tool string, hints uint8) {
	if old, ok := m.hints.m.Load(hintKey{server, tool}); ok && old.(uint8) == hints {
		return
	}
	m.hints.m.Store(hintKey{server, tool}, hints)
}

// ToolHints implements Store: 0 for a tool never listed.
func (m *Memory) ToolHints(server, tool string) uint8 {
	if v, ok := m.hints.m.Load(hintKey{server, tool}); ok {
		return v.(uint8)
	}
	return 0
}
