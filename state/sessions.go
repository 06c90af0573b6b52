package state

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
)

// sessionTable is the sessions and the requests in flight in them
// (inflight.go): one job, since a session's end takes its requests with
// it and the sweep expires both in one transaction.
type sessionTable struct {
	*core
	// count and inflight (by encoded session key) are the sizes of the
	// two tables, guarded by core.countMu.
	count    int
	inflight map[string]int
}

// sessionRec is a session in the table. Records are never changed once
// inserted, except lastSeen, which is shared by every version of the
// record so that touching a session is not a write.
type sessionRec struct {
	key      string
	s        Session // LastSeen unused: see lastSeen
	lastSeen *atomic.Int64
}

func (r *sessionRec) memKey() string { return r.key }

func (r *sessionRec) session() Session {
	s := r.s
	s.LastSeen = fromNanos(r.lastSeen.Load())
	return s
}

// PutSession answers Store.PutSession.
func (t *sessionTable) PutSession(s Session) error {
	if err := s.Key.valid(); err != nil {
		return err
	}
	if t.closed.Load() {
		return ErrClosed
	}
	now := t.now()
	key := sessionKeyString(s.Key)
	txn := t.db.Txn(true)
	defer txn.Abort()
	old, err := txn.First(tableSession, indexID, key)
	if err != nil {
		return fmt.Errorf("state: put session: %w", err)
	}
	rec := &sessionRec{key: key, s: s}
	if o, ok := old.(*sessionRec); ok {
		rec.s.Created = o.s.Created
		rec.lastSeen = o.lastSeen
	} else {
		t.countMu.Lock()
		full := t.count >= t.opts.MaxSessions
		t.countMu.Unlock()
		if full {
			return fmt.Errorf("%w: %d sessions", ErrFull, t.opts.MaxSessions)
		}
		rec.s.Created = now
		rec.lastSeen = new(atomic.Int64)
	}
	rec.s.LastSeen = time.Time{}
	rec.lastSeen.Store(nanos(now))
	if err := txn.Insert(tableSession, rec); err != nil {
		return fmt.Errorf("state: put session: %w", err)
	}
	if old == nil {
		t.countMu.Lock()
		t.count++
		t.countMu.Unlock()
	}
	txn.Commit()
	return nil
}

func (t *sessionTable) sessionRec(k SessionKey) *sessionRec {
	r, _ := t.first(tableSession, sessionKeyString(k)).(*sessionRec)
	return r
}

// Session answers Store.Session.
func (t *sessionTable) Session(k SessionKey) (Session, bool) {
	if r := t.sessionRec(k); r != nil {
		return r.session(), true
	}
	return Session{}, false
}

// TouchSession answers Store.TouchSession.
func (t *sessionTable) TouchSession(k SessionKey) bool {
	r := t.sessionRec(k)
	if r == nil {
		return false
	}
	r.lastSeen.Store(t.now().UnixNano())
	return true
}

// DeleteSession answers Store.DeleteSession.
func (t *sessionTable) DeleteSession(k SessionKey) error {
	if err := k.valid(); err != nil {
		return err
	}
	key := sessionKeyString(k)
	txn := t.db.Txn(true)
	defer txn.Abort()
	obj, err := txn.First(tableSession, indexID, key)
	if err != nil {
		return fmt.Errorf("state: delete session: %w", err)
	}
	if obj == nil {
		// No session record; a request may still be in flight under the
		// key (a session-less exchange key), and goes too.
		obj = &sessionRec{key: key}
	}
	if err := t.deleteSessionTxn(txn, obj.(*sessionRec)); err != nil {
		return fmt.Errorf("state: delete session: %w", err)
	}
	txn.Commit()
	return nil
}

// deleteSessionTxn deletes a session (if in the table) and its requests.
func (t *sessionTable) deleteSessionTxn(txn *memdb.Txn, r *sessionRec) error {
	err := txn.Delete(tableSession, r)
	switch err {
	case nil:
		t.countMu.Lock()
		t.count--
		t.countMu.Unlock()
	case memdb.ErrNotFound:
	default:
		return err
	}
	t.countMu.Lock()
	n := t.inflight[r.key]
	t.countMu.Unlock()
	if n == 0 {
		return nil
	}
	if _, err := txn.DeletePrefix(tableRequest, indexID+"_prefix", r.key); err != nil {
		return err
	}
	t.countMu.Lock()
	delete(t.inflight, r.key)
	t.countMu.Unlock()
	return nil
}
