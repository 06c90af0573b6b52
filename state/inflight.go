package state

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
)

// requestRec is a request in flight in the table.
type requestRec struct {
	key     string // session key + raw id
	session string // session key
	req     Request
	expires int64 // unix ns
}

func (r *requestRec) memKey() string { return r.key }

// BeginRequest answers Store.BeginRequest: one memdb insert.
func (t *sessionTable) BeginRequest(req Request) error {
	if err := req.Session.valid(); err != nil {
		return err
	}
	if len(req.ID) == 0 {
		return fmt.Errorf("%w: request without an id", ErrInvalid)
	}
	if t.closed.Load() {
		return ErrClosed
	}
	now := t.now()
	if req.Start.IsZero() {
		req.Start = now
	}
	req.ID = bytes.Clone(req.ID)
	session := sessionKeyString(req.Session)
	rec := &requestRec{
		key:     requestKeyString(session, req.ID),
		session: session,
		req:     req,
		expires: now.Add(t.opts.RequestTTL).UnixNano(),
	}
	txn := t.db.Txn(true)
	defer txn.Abort()
	old, err := txn.First(tableRequest, indexID, rec.key)
	if err != nil {
		return fmt.Errorf("state: begin request: %w", err)
	}
	o, _ := old.(*requestRec)
	if o != nil && o.expires > now.UnixNano() {
		return fmt.Errorf("%w: id %s (%s since %s)", ErrDuplicateID, o.req.ID, o.req.Method, o.req.Start.Format(time.RFC3339Nano))
	}
	// An expired request with the same id is replaced, not counted twice.
	t.countMu.Lock()
	n := t.inflight[session]
	t.countMu.Unlock()
	if old == nil && n >= t.opts.MaxInFlightPerSession {
		return fmt.Errorf("%w: %d requests in flight in one session", ErrFull, n)
	}
	if err := txn.Insert(tableRequest, rec); err != nil {
		return fmt.Errorf("state: begin request: %w", err)
	}
	if old == nil {
		t.countMu.Lock()
		t.inflight[session]++
		t.countMu.Unlock()
	}
	txn.Commit()
	if o != nil && t.opts.OnExpire != nil {
		t.opts.OnExpire(o.req)
	}
	return nil
}

// InFlight answers Store.InFlight: a lock-free lookup.
func (t *sessionTable) InFlight(k SessionKey, id []byte) (Request, bool) {
	obj := t.first(tableRequest, requestKeyString(sessionKeyString(k), id))
	if obj == nil {
		return Request{}, false
	}
	return obj.(*requestRec).req, true
}

// EndRequest answers Store.EndRequest: a lock-free lookup, then one memdb delete.
// A request past its TTL that the sweep has not dropped yet is still
// returned: its response did come.
func (t *sessionTable) EndRequest(k SessionKey, id []byte) (Request, bool) {
	session := sessionKeyString(k)
	key := requestKeyString(session, id)
	// Most responses that match nothing (notifications have no id, but a
	// hostile server may invent ids) are answered without the writer lock.
	if t.first(tableRequest, key) == nil {
		return Request{}, false
	}
	txn := t.db.Txn(true)
	defer txn.Abort()
	obj, err := txn.First(tableRequest, indexID, key)
	if err != nil || obj == nil {
		return Request{}, false
	}
	r := obj.(*requestRec)
	if err := txn.Delete(tableRequest, r); err != nil {
		return Request{}, false
	}
	t.countMu.Lock()
	t.decInflight(session, 1)
	t.countMu.Unlock()
	txn.Commit()
	return r.req, true
}

// decInflight lowers a session's in-flight count; countMu held.
func (t *sessionTable) decInflight(session string, n int) {
	if c := t.inflight[session] - n; c > 0 {
		t.inflight[session] = c
	} else {
		delete(t.inflight, session)
	}
}

// Expire drops the requests whose TTL has passed by now (calling
// OnExpire for each) and the sessions without a Stream idle for longer
// than SessionIdleTTL. The store calls it every SweepInterval; it is
// exported for callers that want it at a moment of their choosing. It
// finds its victims by scanning a snapshot (no lock; cheaper in all than
// an expiry index that every request would write twice) and takes the
// writer lock only when there are some.
func (t *sessionTable) Expire(now time.Time) {
	read := t.db.Txn(false)
	var reqs []*requestRec
	it, err := read.Get(tableRequest, indexID)
	if err != nil {
		t.report(fmt.Errorf("state: expire: %w", err))
		return
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if r := obj.(*requestRec); r.expires <= now.UnixNano() {
			reqs = append(reqs, r)
		}
	}
	var sessions []*sessionRec
	idle := now.Add(-t.opts.SessionIdleTTL).UnixNano()
	if it, err = read.Get(tableSession, indexID); err != nil {
		t.report(fmt.Errorf("state: expire: %w", err))
		return
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if s := obj.(*sessionRec); s.s.Stream == nil && s.lastSeen.Load() <= idle {
			sessions = append(sessions, s)
		}
	}
	if len(reqs) == 0 && len(sessions) == 0 {
		return
	}

	sortRequests(reqs)
	var expired []Request
	txn := t.db.Txn(true)
	defer txn.Abort()
	for _, r := range reqs {
		// Ended (or replaced) since the snapshot: not ours to drop.
		if cur, _ := txn.First(tableRequest, indexID, r.key); cur != r {
			continue
		}
		if err := txn.Delete(tableRequest, r); err != nil {
			t.report(fmt.Errorf("state: expire: %w", err))
			return
		}
		t.countMu.Lock()
		t.decInflight(r.session, 1)
		t.countMu.Unlock()
		expired = append(expired, r.req)
	}
	for _, s := range sessions {
		cur, _ := txn.First(tableSession, indexID, s.key)
		c, ok := cur.(*sessionRec)
		if !ok || c.s.Stream != nil || c.lastSeen.Load() > idle {
			continue // gone, replaced with a stream, or seen since
		}
		if err := t.deleteSessionTxn(txn, c); err != nil && err != memdb.ErrNotFound {
			t.report(fmt.Errorf("state: expire: %w", err))
			return
		}
	}
	txn.Commit()
	if t.opts.OnExpire != nil {
		for _, r := range expired {
			t.opts.OnExpire(r)
		}
	}
}

// sortRequests puts expired requests in the order they were begun, the
// order OnExpire reports them.
func sortRequests(reqs []*requestRec) {
	slices.SortFunc(reqs, func(a, b *requestRec) int { return cmp.Compare(a.expires, b.expires) })
}
