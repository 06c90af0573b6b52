package test

import (
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7, events: besides one event per request, "an event when a
// session starts, when a server or tool is first seen, and when a tool
// definition changes". Each is of kind mcp, says what happened in
// "action", and names its exchange as its parent.

func lifecycle(e *env, action string, where func(event) bool) []event {
	var out []event
	for _, ev := range e.mcpEvents() {
		if ev.str("action") == action && (where == nil || where(ev)) {
			out = append(out, ev)
		}
	}
	return out
}

func TestMCPLifecycleEvents(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{})
	for _, m := range testenv.MCPModes {
		c := mcpCase{m, m.Revisions()[len(m.Revisions())-1]}
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[m]
			changed, opts := changedHandler()
			cl := e.connect(t, c, opts)
			onPort := func(ev event) bool { return itoa(int(ev.num("port"))) == s.Port }
			var start event
			switch {
			case m == testenv.MCPLegacySSE:
				// The session starts with the stream's endpoint event.
				start = waitMCPEventWhere(t, e.env, "session-start of the legacy stream", func(ev event) bool {
					return ev.str("action") == "session-start" && ev.str("revision") == "2024-11-05" && onPort(ev)
				})
				if !strings.Contains(start.str("session"), "sessionid=") {
					t.Errorf("legacy session-start names session %q, want the endpoint", start.str("session"))
				}
			case m.Stateful():
				start = waitMCPEventWhere(t, e.env, "session-start of "+cl.ID(), func(ev event) bool {
					return ev.str("action") == "session-start" && ev.str("session") == cl.ID() && onPort(ev)
				})
				if start.str("method") != "initialize" || start.str("revision") != c.rev || start.str("server_info") != "peer 1.0.0" {
					t.Errorf("session-start %v: want method initialize, revision %s, server_info \"peer 1.0.0\"", start, c.rev)
				}
			default:
				start = waitMCPEventWhere(t, e.env, "session-start of a discovery", func(ev event) bool {
					return ev.str("action") == "session-start" && ev.str("method") == "server/discover" && onPort(ev)
				})
				if start.str("session") != "" || start.str("revision") != c.rev {
					t.Errorf("stateless session-start %v: want no session, revision %s", start, c.rev)
				}
			}
			if start.str("server") != "srv" || start.str("decision") != "allow" {
				t.Errorf("session-start %v: want server srv, decision allow", start)
			}
			if m != testenv.MCPLegacySSE { // the GET's own event comes when the stream ends
				wantLinked(t, e.env, start)
			} else if start.str("parent") == "" {
				t.Errorf("session-start %v names no exchange", start)
			}
			if m.Stateful() && m != testenv.MCPLegacySSE {
				if n := len(lifecycle(e.env, "session-start", func(ev event) bool { return ev.str("session") == cl.ID() })); n != 1 {
					t.Errorf("%d session-start events for session %s, want 1", n, cl.ID())
				}
			}

			// Tools are first seen once per server, whichever session
			// lists them; a changed definition is its own event.
			listAll(t, cl)
			for _, tool := range []string{testenv.MCPToolEcho, testenv.MCPToolMutable} {
				evs := lifecycle(e.env, "tool-new", func(ev event) bool { return ev.str("tool") == tool && ev.str("server") == "srv" })
				if len(evs) != 1 {
					t.Fatalf("%d tool-new events for srv.%s, want 1 (the first listing of all sessions)", len(evs), tool)
				}
				wantLinked(t, e.env, evs[0])
			}
			if m == testenv.MCPModes[0] {
				rugPull(t, s, cl, changed)
				ev := waitMCPEventWhere(t, e.env, "tool-changed", func(ev event) bool {
					return ev.str("action") == "tool-changed" && ev.str("tool") == testenv.MCPToolMutable
				})
				if ev.str("pin") != "changed" || ev.str("server") != "srv" {
					t.Errorf("tool-changed event %v", ev)
				}
				wantLinked(t, e.env, ev)
				// The next sessions list the changed definition: not
				// new, not changed again.
				if err := s.SetDescription(testenv.MCPToolMutable, testenv.MCPMutableDescription); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// One server, however many sessions and transports reached it.
	news := lifecycle(e.env, "server-new", nil)
	if len(news) != 1 || news[0].str("server") != "srv" {
		t.Fatalf("server-new events %v, want one, for srv", news)
	}
	wantLinked(t, e.env, news[0])
	if !strings.Contains(news[0].str("reason"), "mcp.test") {
		t.Errorf("server-new reason %q names no URL", news[0].str("reason"))
	}
}
