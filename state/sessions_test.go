package state

import (
	"errors"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	c := newClock()
	m := newStore(t, c, Options{})
	k := SessionKey{Server: "jira", ID: "sess-1"}
	if _, ok := m.Session(k); ok {
		t.Fatal("session before put")
	}
	if m.TouchSession(k) {
		t.Fatal("touch of a missing session reported true")
	}
	created := c.Now()
	if err := m.PutSession(Session{Key: k, Agent: "builder"}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	s, _ := m.Session(k)
	s.Revision, s.Server = "2025-06-18", ServerInfo{"Jira MCP", "1.2"}
	if err := m.PutSession(s); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	if !m.TouchSession(k) {
		t.Fatal("touch of a session reported false")
	}
	got, ok := m.Session(k)
	if !ok || got.Agent != "builder" || got.Revision != "2025-06-18" || got.Server.Name != "Jira MCP" {
		t.Fatalf("session %+v", got)
	}
	if !got.Created.Equal(created) {
		t.Errorf("Created %v, want %v (kept across updates)", got.Created, created)
	}
	if !got.LastSeen.Equal(created.Add(2 * time.Second)) {
		t.Errorf("LastSeen %v, want %v", got.LastSeen, created.Add(2*time.Second))
	}
	if err := m.DeleteSession(k); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Session(k); ok {
		t.Fatal("session after delete")
	}
	if err := m.DeleteSession(k); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
}

// Keys never collide, whatever their parts contain.
func TestSessionKeysDistinct(t *testing.T) {
	m := newStore(t, nil, Options{})
	keys := []SessionKey{
		{Server: "a", ID: "b"},
		{Server: "a", ID: "b", Legacy: true},
		{Server: "ab", ID: "x"},
		{Server: "a", ID: "bx"},
		{Server: "a\x00", ID: "b"},
		{Server: "a", ID: "\x00b"},
		{Server: "a", ID: "http://127.0.0.1:1/messages?sessionId=1"},
		{Server: "a", ID: "http://127.0.0.1:1/messages?sessionId=1", Legacy: true},
	}
	for i, k := range keys {
		if err := m.PutSession(Session{Key: k, Agent: string(rune('A' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		if s, _ := m.Session(k); s.Agent != string(rune('A'+i)) {
			t.Errorf("key %+v: agent %q, want %q", k, s.Agent, string(rune('A'+i)))
		}
	}
	for _, k := range []SessionKey{{Server: "", ID: "x"}, {Server: "x", ID: ""}} {
		if err := m.PutSession(Session{Key: k}); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutSession(%+v): %v, want ErrInvalid", k, err)
		}
	}
}

// A legacy session's GET stream is found from the POST endpoint URL.
func TestLegacyStream(t *testing.T) {
	m := newStore(t, nil, Options{})
	type stream struct{ name string }
	st := &stream{"get-stream-1"}
	endpoint := "http://127.0.0.1:8080/messages?sessionId=abc"
	if err := m.PutSession(Session{Key: SessionKey{Server: "legacy", ID: endpoint, Legacy: true}, Stream: st}); err != nil {
		t.Fatal(err)
	}
	s, ok := m.Session(SessionKey{Server: "legacy", ID: endpoint, Legacy: true})
	if !ok || s.Stream != any(st) {
		t.Fatalf("stream %v, want the handle put", s.Stream)
	}
	if _, ok := m.Session(SessionKey{Server: "legacy", ID: endpoint}); ok {
		t.Fatal("a legacy endpoint found as a Streamable HTTP session id")
	}
}

func TestSessionBoundsAndIdle(t *testing.T) {
	c := newClock()
	m := newStore(t, c, Options{MaxSessions: 3, SessionIdleTTL: time.Hour})
	put := func(id string, stream any) error {
		return m.PutSession(Session{Key: SessionKey{Server: "s", ID: id}, Stream: stream})
	}
	for _, id := range []string{"idle", "busy", "streaming"} {
		var stream any
		if id == "streaming" {
			stream = "handle"
		}
		if err := put(id, stream); err != nil {
			t.Fatal(err)
		}
	}
	if err := put("fourth", nil); !errors.Is(err, ErrFull) {
		t.Fatalf("fourth session: %v, want ErrFull", err)
	}
	if err := put("busy", nil); err != nil {
		t.Fatalf("updating an existing session when full: %v", err)
	}
	c.Advance(59 * time.Minute)
	m.TouchSession(SessionKey{Server: "s", ID: "busy"})
	c.Advance(2 * time.Minute)
	m.Expire(c.Now())
	for id, want := range map[string]bool{"idle": false, "busy": true, "streaming": true} {
		if _, ok := m.Session(SessionKey{Server: "s", ID: id}); ok != want {
			t.Errorf("after idle sweep, %s present %v, want %v", id, ok, want)
		}
	}
	if err := put("fourth", nil); err != nil {
		t.Fatalf("a session after one expired: %v", err)
	}
}
