package state

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
// Reads take no lock on the table (memdb snapshots). A binding already
// known for at least as long as a new answer says is not written again,
// so a cached answer served again writes nothing. New bindings go to a
// small write buffer first, which reads see as well, and are committed to
// the table in batches: each memdb transaction copies the radix paths it
// changes, and one per binding cost the uncached DNS path a third of its
// CPU. The table is bounded (Options.MaxEntries, plus the buffer, at
// most 4096 rows): expired bindings go first, then those closest to
// expiry, a small slice of the table at a time; a binding evicted early
// fails closed (the connection it would have matched is decided without
// it).

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

	// The write buffer: bound, not yet committed; by id, and by
	// bindKey for NamesFor. A row is never changed once in it (a longer
	// answer replaces it), since a commit reads it outside bufMu.
	bufMu    sync.Mutex
	buf      map[string]*binding
	bufByKey map[string][]*binding
	bufMax   int         // a commit starts at this many
	flushing atomic.Bool // one commit from the buffer at a time in the background

	mu        sync.Mutex // serialises commits; guards n and nextSweep
	n         int
	nextSweep time.Time
}

// binding is one row: agent asked for name and was given the address in
// ID, valid until Expires (unix nanoseconds, TTL only; the floor is added
// when read).
type binding struct {
	ID      string // key + "\x00" + Name
	key     string // bindKey(agent, ip)
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
	b.buf, b.bufByKey = map[string]*binding{}, map[string][]*binding{}
	b.bufMax = min(max(b.max/16, 1), 1024)
	return b
}

// bindKey is the lookup key of an agent and an address. Agent names
// never hold NUL (rules.validName), so keys cannot collide.
func bindKey(agent string, ip netip.Addr) string {
	return agent + "\x00" + ip.Unmap().String()
}

// Bind records that agent was told name is at each of ips, for ttl. name
// is canonicalised (lower case, no trailing dot). An invalid address, an
// empty name or a negative TTL is an error, and nothing is recorded.
func (b *Bindings) Bind(agent, name string, ttl time.Duration, ips ...netip.Addr) error {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	switch {
	case name == "" || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("state: bind: bad name %q", name)
	case ttl < 0:
		return fmt.Errorf("state: bind %s: negative TTL %s", name, ttl)
	case strings.IndexByte(agent, 0) >= 0:
		return fmt.Errorf("state: bind %s: bad agent %q", name, agent)
	}
	for _, ip := range ips {
		if !ip.IsValid() {
			return fmt.Errorf("state: bind %s: invalid address", name)
		}
	}
	exp := uint64(b.now().Add(ttl).UnixNano())
	snap := b.db.Txn(false)
	var rows []*binding
	for _, ip := range ips {
		key := bindKey(agent, ip)
		id := key + "\x00" + name
		if raw, err := snap.First(bindingsTable, "id", id); err == nil && raw != nil && raw.(*binding).Expires >= exp {
			continue // already known for at least as long: no write
		}
		rows = append(rows, &binding{ID: id, key: key, Name: name, Expires: exp})
	}
	if len(rows) == 0 {
		return nil
	}
	b.bufMu.Lock()
	for _, r := range rows {
		old := b.buf[r.ID]
		switch {
		case old == nil:
			b.bufByKey[r.key] = append(b.bufByKey[r.key], r)
		case old.Expires >= r.Expires:
			continue
		default:
			k := b.bufByKey[r.key]
			k[slices.Index(k, old)] = r
		}
		b.buf[r.ID] = r
	}
	n := len(b.buf)
	b.bufMu.Unlock()
	switch {
	case n >= 4*b.bufMax:
		b.flush() // the background commit is behind: this one waits
	case n >= b.bufMax && b.flushing.CompareAndSwap(false, true):
		go b.flushBehind()
	}
	return nil
}

// flushBehind commits the buffer until it is below bufMax (binds go on
// arriving meanwhile), off the caller's path; flushing is held.
func (b *Bindings) flushBehind() {
	for {
		b.flush()
		b.flushing.Store(false)
		b.bufMu.Lock()
		n := len(b.buf)
		b.bufMu.Unlock()
		if n < b.bufMax || !b.flushing.CompareAndSwap(false, true) {
			return
		}
	}
}

// flush commits what the buffer holds in one transaction, then drops from
// the buffer what it committed (a row replaced meanwhile stays for the
// next). Until then reads find those rows in both; NamesFor tells them
// apart.
func (b *Bindings) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bufMu.Lock()
	rows := make([]*binding, 0, len(b.buf))
	for _, r := range b.buf {
		rows = append(rows, r)
	}
	b.bufMu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	if err := b.commitLocked(rows); err != nil {
		return err // they stay buffered, and visible, for the next try
	}
	b.bufMu.Lock()
	for _, r := range rows {
		if b.buf[r.ID] != r {
			continue
		}
		delete(b.buf, r.ID)
		k := slices.DeleteFunc(b.bufByKey[r.key], func(o *binding) bool { return o == r })
		if len(k) == 0 {
			delete(b.bufByKey, r.key)
		} else {
			b.bufByKey[r.key] = k
		}
	}
	b.bufMu.Unlock()
	return nil
}

// commitLocked writes rows in one transaction, making room first if the
// table would overflow.
func (b *Bindings) commitLocked(rows []*binding) error {
	now := b.now()
	txn := b.db.Txn(true)
	defer txn.Abort()
	type row struct {
		*binding
		isNew bool
	}
	var keep []row
	added := 0
	for _, r := range rows {
		old, err := txn.First(bindingsTable, "id", r.ID)
		if err != nil {
			return fmt.Errorf("state: bind %s: %w", r.Name, err)
		}
		if old != nil && old.(*binding).Expires >= r.Expires {
			continue // a longer answer is known
		}
		keep = append(keep, row{r, old == nil})
		if old == nil {
			added++
		}
	}
	if added > 0 {
		if !now.Before(b.nextSweep) || b.n+added > b.max {
			b.sweepLocked(txn, now)
			b.nextSweep = now.Add(time.Second)
		}
		if over := b.n + added - b.max; over > 0 {
			// A slice of the table at once, so that a full table does
			// not evict on every commit.
			b.evictLocked(txn, min(over+b.max/64, b.n))
		}
	}
	for _, r := range keep {
		if err := txn.Insert(bindingsTable, r.binding); err != nil {
			return fmt.Errorf("state: bind %s: %w", r.Name, err)
		}
		if r.isNew {
			b.n++
		}
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
	key := bindKey(agent, ip)
	// The buffer before the table: a row a commit drops from the buffer
	// after this read was in the table before the table is read.
	var out []string
	b.bufMu.Lock()
	for _, r := range b.bufByKey[key] {
		if r.Expires >= limit {
			out = append(out, r.Name)
		}
	}
	b.bufMu.Unlock()
	it, err := b.db.Txn(false).Get(bindingsTable, "id_prefix", key+"\x00")
	if err != nil {
		return slices.Sorted(slices.Values(out))
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if r := raw.(*binding); r.Expires >= limit {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out) // a row being committed is in both
}

// Len is the number of bindings held, expired ones not yet swept
// included. It commits the write buffer first.
func (b *Bindings) Len() int {
	b.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}
