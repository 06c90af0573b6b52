package state

import (
	"fmt"
	"time"
)

// Links: what a later request refers back to. A task a 2025-11-25
// task-augmented tools/call created is fetched by tasks/result in another
// exchange, whose answer must get the obligations of the tool that made
// it; a 2026-07-28 input_required answer is followed by the client's retry
// under a new id, whose event names the first call. The guard records the
// link when it sees the answer, and looks it up when the later request
// comes. Links are bounded (Options.MaxLinks) and expire (Options.LinkTTL,
// or the link's own Expires).

// LinkKind says what a link is for; it is part of the key.
type LinkKind uint8

const (
	// LinkTask: Key is a task id; the link names the tools/call that
	// created the task.
	LinkTask LinkKind = iota + 1
	// LinkRetry: Key is the guard's key for an input_required answer
	// (its requestState, or its inputRequests' keys); the link names the
	// first call of the round trip.
	LinkRetry
)

// Link is one remembered request.
type Link struct {
	Kind LinkKind
	// Server is the session key's server: the policy's binding name, or
	// the guard's name for an unnamed host.
	Server string
	// Key is the task id, or the retry key.
	Key     string
	Agent   string
	Method  string
	Tool    string
	EventID string // the event of the request the link names
	// Expires is when the link is forgotten; zero means LinkTTL from now,
	// and a time past now+LinkTTL is cut to it.
	Expires time.Time
}

// linkTable is the links; count is its size, guarded by core.countMu.
type linkTable struct {
	*core
	count int
}

type linkRec struct {
	key  string
	link Link
}

func (r *linkRec) memKey() string { return r.key }

func linkKeyString(kind LinkKind, server, key string) string {
	b := make([]byte, 0, len(server)+len(key)+6)
	b = append(b, byte(kind))
	return string(appendKey(appendKey(b, server), key))
}

// PutLink answers Store.PutLink: one memdb insert, replacing a link with the
// same kind, server and key.
func (t *linkTable) PutLink(l Link) error {
	if l.Kind == 0 || l.Server == "" || l.Key == "" {
		return fmt.Errorf("%w: link needs a kind, a server and a key (got %d, %q, %q)", ErrInvalid, l.Kind, l.Server, l.Key)
	}
	if t.closed.Load() {
		return ErrClosed
	}
	now := t.now()
	if limit := now.Add(t.opts.LinkTTL); l.Expires.IsZero() || l.Expires.After(limit) {
		l.Expires = limit
	}
	rec := &linkRec{key: linkKeyString(l.Kind, l.Server, l.Key), link: l}
	txn := t.db.Txn(true)
	defer txn.Abort()
	old, err := txn.First(tableLink, indexID, rec.key)
	if err != nil {
		return fmt.Errorf("state: put link: %w", err)
	}
	if old == nil {
		t.countMu.Lock()
		full := t.count >= t.opts.MaxLinks
		t.countMu.Unlock()
		if full {
			return fmt.Errorf("%w: %d links", ErrFull, t.opts.MaxLinks)
		}
	}
	if err := txn.Insert(tableLink, rec); err != nil {
		return fmt.Errorf("state: put link: %w", err)
	}
	if old == nil {
		t.countMu.Lock()
		t.count++
		t.countMu.Unlock()
	}
	txn.Commit()
	return nil
}

// Link answers Store.Link: a lock-free lookup. A link past its expiry is not
// returned, whether or not the sweep has dropped it yet.
func (t *linkTable) Link(kind LinkKind, server, key string) (Link, bool) {
	r, _ := t.first(tableLink, linkKeyString(kind, server, key)).(*linkRec)
	if r == nil || !r.link.Expires.After(t.now()) {
		return Link{}, false
	}
	return r.link, true
}

// expire drops the links past their expiry.
func (t *linkTable) expire(now time.Time) {
	it, err := t.db.Txn(false).Get(tableLink, indexID)
	if err != nil {
		t.report(fmt.Errorf("state: expire links: %w", err))
		return
	}
	var old []*linkRec
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if r := obj.(*linkRec); !r.link.Expires.After(now) {
			old = append(old, r)
		}
	}
	if len(old) == 0 {
		return
	}
	txn := t.db.Txn(true)
	defer txn.Abort()
	n := 0
	for _, r := range old {
		if cur, _ := txn.First(tableLink, indexID, r.key); cur != r {
			continue // replaced since the snapshot
		}
		if err := txn.Delete(tableLink, r); err != nil {
			t.report(fmt.Errorf("state: expire links: %w", err))
			return
		}
		n++
	}
	t.countMu.Lock()
	t.count -= n
	t.countMu.Unlock()
	txn.Commit()
}
