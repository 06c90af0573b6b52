package state

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Bindings remembers which addresses the DNS filter handed out to which
// agent for which allowed names, and for how long: the answer to "which
// allowed names resolved to this IP, recently, for this agent?" that the
// transparent listener asks before it lets raw TCP to an address pass.
//
// A binding lives for the answer's TTL plus a floor (Options.Floor), so a
// connection made just after the TTL ran out (a client that cached to
// the second, a slow connect) still matches. Only the DNS filter writes,
// and only names the policy allowed; a binding says "this agent was told
// this name is at this address", never more.
//
// Reads take no lock (memdb snapshots). Writes serialise on one mutex and
// are skipped when the binding already outlives the new answer, so a
// cached answer served again writes nothing. The table is bounded
// (Options.MaxEntries): expired bindings go first, then those closest to
// expiry; a binding evicted early fails closed (the connection it would
// have matched is decided without it).

// Defaults for BindingsOptions' zero values.
const (
	DefaultBindingsMax   = 200_000
	DefaultBindingsFloor = 30 * time.Second
)

// BindingsOptions configure NewBindings. The zero value is usable.
type BindingsOptions struct {
	// MaxEntries bounds the bindings held; 0 means DefaultBindingsMax.
	MaxEntries int
	// Floor is how long a binding outlives its TTL; 0 means
	// DefaultBindingsFloor, negative none.
	Floor time.Duration
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Bindings is the IP→name table. It is safe for concurrent use.
type Bindings struct {
	db    *memdb.MemDB
	max   int
	floor time.Duration
	now   func() time.Time

	mu        sync.Mutex // serialises writes; guards n and nextSweep
	n         int
	nextSweep time.Time
}

// binding is one row: agent asked for name and was given ip, valid until
// Expires (unix nanoseconds, TTL only; the floor is added when read).
type binding struct {
	ID      string // Key + "\x00" + Name
	Key     string // Agent + "\x00" + IP
	Name    string
	Expires uint64
}

const bindingsTable = "bindings"

func bindingsSchema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		bindingsTable: {
			Name: bindingsTable,
			Indexes: map[string]*memdb.IndexSchema{
				"id":      {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				"key":     {Name: "key", Indexer: &memdb.StringFieldIndex{Field: "Key"}},
				"expires": {Name: "expires", Indexer: &memdb.UintFieldIndex{Field: "Expires"}},
			},
		},
	}}
}

// NewBindings returns an empty table.
func NewBindings(opts BindingsOptions) *Bindings {
	db, err := memdb.NewMemDB(bindingsSchema())
	if err != nil {
		panic("state: bindings schema: " + err.Error()) // a static schema: a programming error
	}
	b := &Bindings{db: db, max: opts.MaxEntries, floor: opts.Floor, now: opts.Now}
	if b.max <= 0 {
		b.max = DefaultBindingsMax
	}
	switch {
	case b.floor == 0:
		b.floor = DefaultBindingsFloor
	case b.floor < 0:
		b.floor = 0
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// bindKey is the lookup key of an agent and an address. Agent names
// never hold NUL (rules.validName), so keys cannot collide.
func bindKey(agent string, ip netip.Addr) string {
	return agent + "\x00" + ip.Unmap().String()
}

// Bind records that agent was told name is at ip, for ttl. name is
// canonicalised (lower case, no trailing dot). An invalid address, an
// empty name or a negative TTL is an error.
func (b *Bindings) Bind(agent, name string, ip netip.Addr, ttl time.Duration) error {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	switch {
	case !ip.IsValid():
		return errors.New("state: bind: invalid address")
	case name == "" || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("state: bind: bad name %q", name)
	case ttl < 0:
		return fmt.Errorf("state: bind %s: negative TTL %s", name, ttl)
	case strings.IndexByte(agent, 0) >= 0:
		return fmt.Errorf("state: bind %s: bad agent %q", name, agent)
	}
	now := b.now()
	exp := uint64(now.Add(ttl).UnixNano())
	key := bindKey(agent, ip)
	id := key + "\x00" + name
	if raw, err := b.db.Txn(false).First(bindingsTable, "id", id); err == nil && raw != nil && raw.(*binding).Expires >= exp {
		return nil // already known for at least as long: no write
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	txn := b.db.Txn(true)
	defer txn.Abort()
	old, err := txn.First(bindingsTable, "id", id)
	if err != nil {
		return fmt.Errorf("state: bind %s: %w", name, err)
	}
	if old != nil && old.(*binding).Expires >= exp {
		return nil
	}
	if old == nil {
		if !now.Before(b.nextSweep) || b.n >= b.max {
			b.sweepLocked(txn, now)
			b.nextSweep = now.Add(time.Second)
		}
		if b.n >= b.max {
			b.evictLocked(txn, b.n-b.max+1)
		}
	}
	if err := txn.Insert(bindingsTable, &binding{ID: id, Key: key, Name: name, Expires: exp}); err != nil {
		return fmt.Errorf("state: bind %s: %w", name, err)
	}
	if old == nil {
		b.n++
	}
	txn.Commit()
	return nil
}

// sweepLocked deletes the bindings whose TTL and floor have both passed.
func (b *Bindings) sweepLocked(txn *memdb.Txn, now time.Time) {
	limit := uint64(now.Add(-b.floor).UnixNano())
	var dead []any
	it, err := txn.Get(bindingsTable, "expires")
	if err != nil {
		return
	}
	for raw := it.Next(); raw != nil && raw.(*binding).Expires < limit; raw = it.Next() {
		dead = append(dead, raw)
	}
	for _, raw := range dead {
		if txn.Delete(bindingsTable, raw) == nil {
			b.n--
		}
	}
}

// evictLocked deletes the k bindings closest to expiry.
func (b *Bindings) evictLocked(txn *memdb.Txn, k int) {
	it, err := txn.Get(bindingsTable, "expires")
	if err != nil {
		return
	}
	var victims []any
	for raw := it.Next(); raw != nil && len(victims) < k; raw = it.Next() {
		victims = append(victims, raw)
	}
	for _, raw := range victims {
		if txn.Delete(bindingsTable, raw) == nil {
			b.n--
		}
	}
}

// NamesFor returns the names handed out to agent for ip whose TTL plus
// the floor has not passed, sorted; nil when there are none. An
// IPv4-mapped address is looked up as the IPv4 address it maps.
func (b *Bindings) NamesFor(agent string, ip netip.Addr) []string {
	if !ip.IsValid() {
		return nil
	}
	limit := uint64(b.now().Add(-b.floor).UnixNano())
	it, err := b.db.Txn(false).Get(bindingsTable, "key", bindKey(agent, ip))
	if err != nil {
		return nil
	}
	var out []string
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if r := raw.(*binding); r.Expires >= limit {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Len is the number of bindings held, expired ones not yet swept
// included.
func (b *Bindings) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}
