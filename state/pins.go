package state

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
)

// pinTable is the tools' definition pins, kept in memory and in PinsFile
// (pinfile.go).
type pinTable struct {
	*core
	// pinMu serialises pin writes and guards pinGen and pinCounts (lock
	// order: saveMu, pinMu, memdb writer).
	pinMu     sync.Mutex
	pinGen    uint64         // bumped by every pin change in memory
	pinCounts map[string]int // pins per server
	// saveMu serialises reading and writing PinsFile in this process.
	saveMu   sync.Mutex
	savedGen uint64      // pinGen as of the last write or load of the file
	pinStat  os.FileInfo // the file as last written or loaded; nil if none
	touched  atomic.Bool // a pin's last-seen time moved since the last write
}

// pinRec is a pin in the table. lastSeen and calls are shared by every
// version of the record, so seeing or calling a tool is not a write.
type pinRec struct {
	key      string
	p        Pin // LastSeen unused: see lastSeen
	lastSeen *atomic.Int64
	calls    *atomic.Uint64
	// gen is Memory.pinGen when this version was made in memory; above
	// savedGen it is not in the file yet.
	gen uint64
}

func (r *pinRec) memKey() string { return r.key }

func (r *pinRec) pin() Pin {
	p := r.p
	p.LastSeen = fromNanos(r.lastSeen.Load())
	return p
}

func newPinRec(p Pin) *pinRec {
	r := &pinRec{key: pinKeyString(p.Server, p.Tool), p: p, lastSeen: new(atomic.Int64), calls: new(atomic.Uint64)}
	r.p.LastSeen = time.Time{}
	r.lastSeen.Store(nanos(p.LastSeen))
	return r
}

// CheckPin answers Store.CheckPin. The usual case, a definition seen before, is
// a lock-free read. A new or changed definition is one memdb write and a
// write of PinsFile before CheckPin returns (a failure to write goes to
// OnError: the pin holds in memory).
func (t *pinTable) CheckPin(server, tool string, h Hash) PinResult {
	if server == "" || t.closed.Load() {
		return PinUnchecked
	}
	now := t.now()
	key := pinKeyString(server, tool)
	if r, _ := t.first(tablePin, key).(*pinRec); r != nil && r.p.Hash == h {
		t.touchPin(r, now)
		return r.p.Result()
	}
	var res PinResult
	gen, err := t.changePin(key, func(old *pinRec) (*Pin, error) {
		if old == nil {
			if t.pinCounts[server] >= t.opts.MaxToolsPerServer {
				return nil, fmt.Errorf("%w: %d tools pinned for server %q", ErrFull, t.opts.MaxToolsPerServer, server)
			}
			res = PinNew
			return &Pin{Server: server, Tool: tool, Hash: h, Accepted: true, FirstSeen: now, LastSeen: now}, nil
		}
		p := old.pin()
		p.LastSeen = now
		switch {
		case p.Hash == h: // another caller pinned it meanwhile
			res = p.Result()
			return nil, nil
		case p.Accepted:
			p.Previous, p.Hash, p.Accepted = p.Hash, h, false
		case h == p.Previous:
			// Back to the definition accepted before the pending change.
			p.Previous, p.Hash, p.Accepted = p.Hash, h, true
		default:
			// Another change while one is pending: Previous stays the
			// last accepted definition.
			p.Hash = h
		}
		res = p.Result()
		return &p, nil
	})
	if err != nil {
		t.report(err)
		return PinUnchecked
	}
	if gen != 0 {
		t.invDirty.Store(true)
		t.report(t.savePins(gen, false))
	}
	return res
}

// MigratePin answers Store.MigratePin: one write, like a change, without one.
func (t *pinTable) MigratePin(server, tool string, from, to Hash) bool {
	if server == "" || t.closed.Load() {
		return false
	}
	done := false
	gen, err := t.changePin(pinKeyString(server, tool), func(old *pinRec) (*Pin, error) {
		if old == nil || old.p.Hash != from {
			return nil, nil
		}
		p := old.pin()
		p.Hash, done = to, true
		return &p, nil
	})
	if err != nil {
		t.report(err)
		return false
	}
	if gen != 0 {
		t.invDirty.Store(true)
		t.report(t.savePins(gen, false))
	}
	return done
}

func (t *pinTable) touchPin(r *pinRec, now time.Time) {
	r.lastSeen.Store(nanos(now))
	if !t.touched.Load() {
		t.touched.Store(true)
	}
	if !t.invDirty.Load() {
		t.invDirty.Store(true)
	}
}

// changePin runs change on the pin with key (nil when there is none) in
// a write transaction under pinMu, and stores what it returns (nothing
// when it returns nil). It returns the new version's gen, 0 when nothing
// was written.
func (t *pinTable) changePin(key string, change func(old *pinRec) (*Pin, error)) (uint64, error) {
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	txn := t.db.Txn(true)
	defer txn.Abort()
	obj, err := txn.First(tablePin, indexID, key)
	if err != nil {
		return 0, fmt.Errorf("state: pin: %w", err)
	}
	old, _ := obj.(*pinRec)
	p, err := change(old)
	if err != nil || p == nil {
		return 0, err
	}
	rec := newPinRec(*p)
	if old != nil {
		rec.lastSeen, rec.calls = old.lastSeen, old.calls
		rec.lastSeen.Store(nanos(p.LastSeen))
	}
	t.pinGen++
	rec.gen = t.pinGen
	if err := txn.Insert(tablePin, rec); err != nil {
		return 0, fmt.Errorf("state: pin: %w", err)
	}
	txn.Commit()
	if old == nil {
		t.pinCounts[p.Server]++
	}
	return rec.gen, nil
}

// Pin answers Store.Pin.
func (t *pinTable) Pin(server, tool string) (Pin, bool) {
	if r, _ := t.first(tablePin, pinKeyString(server, tool)).(*pinRec); r != nil {
		return r.pin(), true
	}
	return Pin{}, false
}

// Pins answers Store.Pins.
func (t *pinTable) Pins() []Pin {
	return t.pinsAt(t.db.Txn(false))
}

// pinsAt lists the pins in txn, sorted.
func (t *pinTable) pinsAt(txn *memdb.Txn) []Pin {
	it, err := txn.Get(tablePin, indexID)
	if err != nil {
		return nil
	}
	var pins []Pin
	for obj := it.Next(); obj != nil; obj = it.Next() {
		pins = append(pins, obj.(*pinRec).pin())
	}
	sortPins(pins)
	return pins
}

// AcceptPin answers Store.AcceptPin: the pin is accepted in memory and written
// to PinsFile; an error writing it is returned (with the pin accepted).
func (t *pinTable) AcceptPin(server, tool string) (Pin, error) {
	if t.closed.Load() {
		return Pin{}, ErrClosed
	}
	var out Pin
	gen, err := t.changePin(pinKeyString(server, tool), func(old *pinRec) (*Pin, error) {
		p, err := acceptPin(old.pinOrNil(), server, tool)
		if err != nil {
			return nil, err
		}
		out = *p
		return p, nil
	})
	if err != nil {
		return Pin{}, err
	}
	t.invDirty.Store(true)
	if err := t.savePins(gen, false); err != nil {
		return out, fmt.Errorf("accepted in memory, not saved: %w", err)
	}
	return out, nil
}

func (r *pinRec) pinOrNil() *Pin {
	if r == nil {
		return nil
	}
	p := r.pin()
	return &p
}

// acceptPin is the one rule for accepting, shared by AcceptPin and
// AcceptPinFile.
func acceptPin(p *Pin, server, tool string) (*Pin, error) {
	switch {
	case p == nil:
		return nil, fmt.Errorf("%w for tool %q of server %q", ErrNoPin, tool, server)
	case p.Accepted:
		return nil, fmt.Errorf("%w: the definition of tool %q of server %q has not changed since it was accepted", ErrNothingToAccept, tool, server)
	}
	p.Accepted = true
	return p, nil
}

func sortPins(pins []Pin) {
	slices.SortFunc(pins, func(a, b Pin) int {
		return cmp.Or(cmp.Compare(a.Server, b.Server), cmp.Compare(a.Tool, b.Tool))
	})
}
