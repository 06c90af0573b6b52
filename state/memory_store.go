package state

import "time"

// Memory answers the Store interface through its tables; each method
// says nothing more than which table does the job.

// PutSession implements Store.
func (m *Memory) PutSession(s Session) error { return m.sessions.PutSession(s) }

// Session implements Store.
func (m *Memory) Session(k SessionKey) (Session, bool) { return m.sessions.Session(k) }

// TouchSession implements Store.
func (m *Memory) TouchSession(k SessionKey) bool { return m.sessions.TouchSession(k) }

// DeleteSession implements Store.
func (m *Memory) DeleteSession(k SessionKey) error { return m.sessions.DeleteSession(k) }

// BeginRequest implements Store.
func (m *Memory) BeginRequest(req Request) error { return m.sessions.BeginRequest(req) }

// EndRequest implements Store.
func (m *Memory) EndRequest(k SessionKey, id []byte) (Request, bool) {
	return m.sessions.EndRequest(k, id)
}

// InFlight implements Store.
func (m *Memory) InFlight(k SessionKey, id []byte) (Request, bool) {
	return m.sessions.InFlight(k, id)
}

// Expire drops the requests whose TTL has passed by now and the idle
// sessions (see sessionTable.Expire); the store calls it every
// SweepInterval, and callers may at a moment of their choosing.
func (m *Memory) Expire(now time.Time) { m.sessions.Expire(now) }

// SetToolHints implements Store.
func (m *Memory) SetToolHints(server, tool string, hints uint8) {
	m.tools.SetToolHints(server, tool, hints)
}

// ToolHints implements Store.
func (m *Memory) ToolHints(server, tool string) uint8 { return m.tools.ToolHints(server, tool) }

// SetToolParams implements Store.
func (m *Memory) SetToolParams(server, tool string, p ToolParams) {
	m.tools.SetToolParams(server, tool, p)
}

// ToolParams implements Store.
func (m *Memory) ToolParams(server, tool string) (ToolParams, bool) {
	return m.tools.ToolParams(server, tool)
}

// CheckPin implements Store.
func (m *Memory) CheckPin(server, tool string, h Hash) PinResult {
	return m.pins.CheckPin(server, tool, h)
}

// MigratePin implements Store.
func (m *Memory) MigratePin(server, tool string, from, to Hash) bool {
	return m.pins.MigratePin(server, tool, from, to)
}

// Pin implements Store.
func (m *Memory) Pin(server, tool string) (Pin, bool) { return m.pins.Pin(server, tool) }

// Pins implements Store.
func (m *Memory) Pins() []Pin { return m.pins.Pins() }

// AcceptPin implements Store.
func (m *Memory) AcceptPin(server, tool string) (Pin, error) { return m.pins.AcceptPin(server, tool) }

// Reload implements Store (see pinTable.Reload).
func (m *Memory) Reload() error { return m.pins.Reload() }

// ObserveServer implements Store.
func (m *Memory) ObserveServer(s ServerSighting) (bool, error) {
	return m.inventory.ObserveServer(s)
}

// CountCall implements Store.
func (m *Memory) CountCall(server, tool string) { m.inventory.CountCall(server, tool) }

// Snapshot implements Store.
func (m *Memory) Snapshot() Inventory { return m.inventory.Snapshot() }

// WriteInventory writes the Snapshot to InventoryFile now (the store
// writes it every WriteInterval and on Close).
func (m *Memory) WriteInventory() error { return m.inventory.Write() }

// PutLink implements Store.
func (m *Memory) PutLink(l Link) error { return m.links.PutLink(l) }

// Link implements Store.
func (m *Memory) Link(kind LinkKind, server, key string) (Link, bool) {
	return m.links.Link(kind, server, key)
}
