package mcp

import "sync"

// causes are the tools/call requests in flight per server on a message
// stream (Session): while one runs, the network calls its server makes
// through agentg are its effects, and their events name it (caused_by).
// Only stream sessions record causes: they are the servers agentg starts
// and whose own egress comes back through it under the server's name.
// The zero value is ready.
type causeTable struct {
	mu sync.Mutex
	by map[string][]cause // by server, oldest first
}

type cause struct{ event, tool string }

func (t *causeTable) begin(server, event, tool string) {
	t.mu.Lock()
	if t.by == nil {
		t.by = map[string][]cause{}
	}
	t.by[server] = append(t.by[server], cause{event, tool})
	t.mu.Unlock()
}

func (t *causeTable) end(server, event string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := t.by[server]
	for i, c := range cs {
		if c.event == event {
			cs = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(t.by, server)
		return
	}
	t.by[server] = cs
}

// CauseOf is the tools/call of server's in flight that its egress now is
// attributed to: its event id and tool. With several in flight it is the
// latest started, the one most likely still working; ok is false when
// none is in flight. It is cheap when no stream session is open (one
// lock, one map lookup).
func (g *Guard) CauseOf(server string) (event, tool string, ok bool) {
	t := &g.causes
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := t.by[server]
	if len(cs) == 0 {
		return "", "", false
	}
	c := cs[len(cs)-1]
	return c.event, c.tool, true
}
