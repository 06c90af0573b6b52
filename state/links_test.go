package state

import (
	"errors"
	"testing"
	"time"
)

func TestLinks(t *testing.T) {
	c := newClock()
	m := newStore(t, c, Options{LinkTTL: time.Minute, MaxLinks: 2})
	task := Link{Kind: LinkTask, Server: "srv", Key: "t-1", Agent: "a", Method: "tools/call", Tool: "secret", EventID: "e1"}
	if err := m.PutLink(task); err != nil {
		t.Fatal(err)
	}
	got, ok := m.Link(LinkTask, "srv", "t-1")
	if !ok || got.Tool != "secret" || got.EventID != "e1" || !got.Expires.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("link %+v %v", got, ok)
	}
	// Kind, server and key are all of the key.
	for _, k := range []struct {
		kind        LinkKind
		server, key string
	}{{LinkRetry, "srv", "t-1"}, {LinkTask, "other", "t-1"}, {LinkTask, "srv", "t-2"}, {LinkTask, "srvt", "-1"}} {
		if _, ok := m.Link(k.kind, k.server, k.key); ok {
			t.Errorf("link found under %+v", k)
		}
	}
	for _, bad := range []Link{{Server: "s", Key: "k"}, {Kind: LinkTask, Key: "k"}, {Kind: LinkTask, Server: "s"}} {
		if err := m.PutLink(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutLink(%+v): %v", bad, err)
		}
	}
	// An Expires past the TTL is cut to it; a shorter one is kept.
	if err := m.PutLink(Link{Kind: LinkRetry, Server: "srv", Key: "r", EventID: "e2", Expires: c.Now().Add(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := m.PutLink(Link{Kind: LinkRetry, Server: "srv", Key: "full"}); !errors.Is(err, ErrFull) {
		t.Fatalf("past MaxLinks: %v", err)
	}
	// Replacing one is not a new one.
	task.EventID = "e3"
	if err := m.PutLink(task); err != nil {
		t.Fatalf("replacing a link: %v", err)
	}
	c.Advance(11 * time.Second)
	if _, ok := m.Link(LinkRetry, "srv", "r"); ok {
		t.Fatal("an expired link was found")
	}
	m.links.expire(c.Now())
	if err := m.PutLink(Link{Kind: LinkRetry, Server: "srv", Key: "new"}); err != nil {
		t.Fatalf("after the sweep dropped one: %v", err)
	}
	if got, ok := m.Link(LinkTask, "srv", "t-1"); !ok || got.EventID != "e3" {
		t.Fatalf("replaced link %+v %v", got, ok)
	}
	c.Advance(time.Minute)
	if _, ok := m.Link(LinkTask, "srv", "t-1"); ok {
		t.Fatal("a link outlived LinkTTL")
	}
}
