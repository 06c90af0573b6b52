package state

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestInFlight(t *testing.T) {
	m := newStore(t, nil, Options{})
	k := SessionKey{Server: "jira", ID: "s1"}
	other := SessionKey{Server: "jira", ID: "s2"}
	id := []byte(`1`)
	if err := m.BeginRequest(Request{Session: k, ID: id, Method: "tools/call", Tool: "create_issue", Agent: "builder", EventID: "ev1"}); err != nil {
		t.Fatal(err)
	}
	id[0] = '9' // the store kept its own copy
	tests := []struct {
		name string
		req  Request
		err  error
	}{
		{"same id again", Request{Session: k, ID: []byte(`1`)}, ErrDuplicateID},
		{"string id differs from number", Request{Session: k, ID: []byte(`"1"`)}, nil},
		{"same id in another session", Request{Session: other, ID: []byte(`1`)}, nil},
		{"same id, legacy key", Request{Session: SessionKey{Server: "jira", ID: "s1", Legacy: true}, ID: []byte(`1`)}, nil},
		{"no id", Request{Session: k}, ErrInvalid},
		{"no session id", Request{Session: SessionKey{Server: "jira"}, ID: []byte(`2`)}, ErrInvalid},
	}
	for _, tt := range tests {
		err := m.BeginRequest(tt.req)
		if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
	if _, ok := m.EndRequest(k, []byte(`01`)); ok {
		t.Fatal("matched an id that was never sent")
	}
	if r, ok := m.InFlight(k, []byte(`1`)); !ok || r.Tool != "create_issue" {
		t.Fatalf("InFlight: %+v %v", r, ok)
	}
	if _, ok := m.InFlight(k, []byte(`01`)); ok {
		t.Fatal("InFlight matched an id that was never sent")
	}
	r, ok := m.EndRequest(k, []byte(`1`)) // InFlight left it there
	if !ok || r.Method != "tools/call" || r.Tool != "create_issue" || r.Agent != "builder" || r.EventID != "ev1" || string(r.ID) != "1" || r.Start.IsZero() {
		t.Fatalf("EndRequest: %+v %v", r, ok)
	}
	if _, ok := m.EndRequest(k, []byte(`1`)); ok {
		t.Fatal("a response matched twice")
	}
	if r, ok := m.EndRequest(k, []byte(`"1"`)); !ok || string(r.ID) != `"1"` {
		t.Fatalf("string id: %+v %v", r, ok)
	}
	// A freed id may be used again.
	if err := m.BeginRequest(Request{Session: k, ID: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
}

func TestInFlightExpiry(t *testing.T) {
	c := newClock()
	var expired []string
	var mu sync.Mutex
	m := newStore(t, c, Options{RequestTTL: time.Minute, OnExpire: func(r Request) {
		mu.Lock()
		expired = append(expired, string(r.ID))
		mu.Unlock()
	}})
	k := SessionKey{Server: "s", ID: "x"}
	m.BeginRequest(Request{Session: k, ID: []byte(`1`)})
	c.Advance(30 * time.Second)
	m.BeginRequest(Request{Session: k, ID: []byte(`2`)})
	c.Advance(31 * time.Second)
	// 1 is past its TTL: a new request may take its id, and 1 is reported.
	if err := m.BeginRequest(Request{Session: k, ID: []byte(`1`), Method: "again"}); err != nil {
		t.Fatalf("reusing an expired id: %v", err)
	}
	c.Advance(30 * time.Second)
	m.Expire(c.Now())
	mu.Lock()
	got := fmt.Sprint(expired)
	mu.Unlock()
	if got != "[1 2]" {
		t.Fatalf("expired %s, want [1 2]", got)
	}
	if r, ok := m.EndRequest(k, []byte(`1`)); !ok || r.Method != "again" {
		t.Fatalf("the request that reused the id: %+v %v", r, ok)
	}
	if _, ok := m.EndRequest(k, []byte(`2`)); ok {
		t.Fatal("an expired request matched")
	}
}

func TestInFlightBound(t *testing.T) {
	m := newStore(t, nil, Options{MaxInFlightPerSession: 3})
	k := SessionKey{Server: "s", ID: "x"}
	for i := range 3 {
		if err := m.BeginRequest(Request{Session: k, ID: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.BeginRequest(Request{Session: k, ID: []byte(`3`)}); !errors.Is(err, ErrFull) {
		t.Fatalf("fourth in flight: %v, want ErrFull", err)
	}
	if err := m.BeginRequest(Request{Session: SessionKey{Server: "s", ID: "y"}, ID: []byte(`3`)}); err != nil {
		t.Fatalf("another session is not bounded by this one: %v", err)
	}
	m.EndRequest(k, []byte(`0`))
	if err := m.BeginRequest(Request{Session: k, ID: []byte(`3`)}); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	// Deleting the session drops its requests and frees its count.
	m.PutSession(Session{Key: k})
	if err := m.DeleteSession(k); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		if _, ok := m.EndRequest(k, []byte(id)); ok {
			t.Errorf("request %s survived its session", id)
		}
	}
	for i := range 3 {
		if err := m.BeginRequest(Request{Session: k, ID: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatalf("after delete: %v", err)
		}
	}
	// Also without a session record (a session-less exchange key).
	if err := m.DeleteSession(SessionKey{Server: "s", ID: "y"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.EndRequest(SessionKey{Server: "s", ID: "y"}, []byte(`3`)); ok {
		t.Error("request survived DeleteSession of a key without a session record")
	}
}

// Many goroutines beginning and ending requests: every id is matched
// exactly once, and a contested id is granted to exactly one of them.
func TestInFlightConcurrent(t *testing.T) {
	m := newStore(t, nil, Options{MaxInFlightPerSession: 1 << 20})
	const workers, each = 8, 300
	var wg sync.WaitGroup
	var contested atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := SessionKey{Server: "s", ID: fmt.Sprint("session-", w%2)}
			for i := range each {
				id := fmt.Appendf(nil, `"%d-%d"`, w, i)
				if err := m.BeginRequest(Request{Session: k, ID: id}); err != nil {
					t.Error(err)
					return
				}
				if err := m.BeginRequest(Request{Session: SessionKey{Server: "s", ID: "shared"}, ID: fmt.Appendf(nil, "%d", i)}); err == nil {
					contested.Add(1)
				} else if !errors.Is(err, ErrDuplicateID) {
					t.Error(err)
				}
				if r, ok := m.EndRequest(k, id); !ok || string(r.ID) != string(id) {
					t.Errorf("EndRequest(%s): %v %s", id, ok, r.ID)
				}
			}
		}()
	}
	wg.Wait()
	if got := contested.Load(); got != each {
		t.Fatalf("contested ids granted %d times, want %d (once each)", got, each)
	}
	m.sessions.countMu.Lock()
	defer m.sessions.countMu.Unlock()
	if n := m.sessions.inflight[sessionKeyString(SessionKey{Server: "s", ID: "session-0"})]; n != 0 {
		t.Fatalf("count left at %d after every request ended", n)
	}
}

func BenchmarkBeginEndParallel(b *testing.B) {
	m := newStore(b, nil, Options{MaxInFlightPerSession: 1 << 20})
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		k := SessionKey{Server: "jira", ID: fmt.Sprint("session-", n.Add(1))}
		id := make([]byte, 0, 16)
		i := 0
		for pb.Next() {
			id = fmt.Appendf(id[:0], "%d", i)
			if err := m.BeginRequest(Request{Session: k, ID: id, Method: "tools/call", Tool: "t"}); err != nil {
				b.Fatal(err)
			}
			if _, ok := m.EndRequest(k, id); !ok {
				b.Fatal("not matched")
			}
			i++
		}
	})
}

func BenchmarkSessionLookupParallel(b *testing.B) {
	m := newStore(b, nil, Options{})
	for i := range 1000 {
		m.PutSession(Session{Key: SessionKey{Server: "jira", ID: fmt.Sprint(i)}})
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if !m.TouchSession(SessionKey{Server: "jira", ID: "500"}) {
				b.Fatal("missing")
			}
			i++
		}
	})
}
