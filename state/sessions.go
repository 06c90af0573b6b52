package state

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
)

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

// PutSession implements Store.
func (m *Memory) PutSession(s Session) error {
	if err := s.Key.valid(); err != nil {
		return err
	}
	if m.closed.Load() {
		return ErrClosed
	}
	now := m.now()
	key := sessionKeyString(s.Key)
	txn := m.db.Txn(true)
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
		m.countMu.Lock()
		full := m.sessions >= m.opts.MaxSessions
		m.countMu.Unlock()
		if full {
			return fmt.Errorf("%w: %d sessions", ErrFull, m.opts.MaxSessions)
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
		m.countMu.Lock()
		m.sessions++
		m.countMu.Unlock()
	}
	txn.Commit()
	return nil
}

func (m *Memory) sessionRec(k SessionKey) *sessionRec {
	r, _ := m.first(tableSession, sessionKeyString(k)).(*sessionRec)
	return r
}

// Session implements Store.
func (m *Memory) Session(k SessionKey) (Session, bool) {
	if r := m.sessionRec(k); r != nil {
		return r.session(), true
	}
	return Session{}, false
}

// TouchSession implements Store.
func (m *Memory) TouchSession(k SessionKey) bool {
	r := m.sessionRec(k)
	if r == nil {
		return false
	}
	r.lastSeen.Store(m.now().UnixNano())
	return true
}

// DeleteSession implements Store.
func (m *Memory) DeleteSession(k SessionKey) error {
	if err := k.valid(); err != nil {
		return err
	}
	key := sessionKeyString(k)
	txn := m.db.Txn(true)
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
	if err := m.deleteSessionTxn(txn, obj.(*sessionRec)); err != nil {
		return fmt.Errorf("state: delete session: %w", err)
	}
	txn.Commit()
	return nil
}

// deleteSessionTxn deletes a session (if in the table) and its requests.
func (m *Memory) deleteSessionTxn(txn *memdb.Txn, r *sessionRec) error {
	err := txn.Delete(tableSession, r)
	switch err {
	case nil:
		m.countMu.Lock()
		m.sessions--
		m.countMu.Unlock()
	case memdb.ErrNotFound:
	default:
		return err
	}
	m.countMu.Lock()
	n := m.inflight[r.key]
	m.countMu.Unlock()
	if n == 0 {
		return nil
	}
	if _, err := txn.DeletePrefix(tableRequest, indexID+"_prefix", r.key); err != nil {
		return err
	}
	m.countMu.Lock()
	delete(m.inflight, r.key)
	m.countMu.Unlock()
	return nil
}
