package state

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
// The table is bounded in bytes (BindingsOptions.MaxBytes, SetMaxBytes:
// the share of dns.memory the DNS filter gives it), split evenly over
// shards, each a map under its own lock: a bind or a lookup locks one
// shard, never the table. Each row is charged what it holds in memory (an
// estimate that errs high: TestBindingsMemoryBounded measures it), so the
// bound is on the heap, not on a count. Over its share, a shard drops the
// expired bindings it holds and then, among a few addresses sampled at
// random, the one whose bindings all expire first; a binding evicted
// early fails closed (the connection it would have matched is decided
// without it).
//
// It was a go-memdb table until issue 14: every row cost about a KiB of
// radix nodes, index keys and watch channels (200,000 rows held 200 MiB
// live, and commits under load far more), and a row is written on every
// uncached DNS answer, which is not the read-mostly state memdb is for.

// Defaults for BindingsOptions' zero values.
const (
	DefaultBindingsBytes = 64 << 20
	DefaultBindingsFloor = 30 * time.Second
)

// What the table charges, in bytes, beyond the strings it holds: an
// address's map slot, key and row slice (keyCost), one row in that slice
// (rowCost). Map buckets at their load factor, allocation size classes
// and slice growth are included.
const (
	keyCost = 160
	rowCost = 64

	bindShards  = 64
	evictSample = 8
)

// BindingsOptions configure NewBindings. The zero value is usable.
type BindingsOptions struct {
	// MaxBytes bounds the memory the bindings hold; 0 means
	// DefaultBindingsBytes.
	MaxBytes int64
	// Floor is how long a binding outlives its TTL; 0 means
	// DefaultBindingsFloor, negative none.
	Floor time.Duration
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Bindings is the IP→name table. It is safe for concurrent use.
type Bindings struct {
	floor    time.Duration
	now      func() time.Time
	seed     maphash.Seed
	maxBytes atomic.Int64 // the whole table's
	shards   [bindShards]bindShard
}

type bindShard struct {
	mu        sync.RWMutex
	m         map[bindKey][]bindRow
	rows      int
	bytes     int64
	nextSweep int64    // unix nanoseconds
	deleted   int      // keys deleted since m was made
	_         [32]byte // keep neighbouring shards' locks off one cache line
}

// bindKey is an agent and an address (IPv4-mapped addresses unmapped).
type bindKey struct {
	agent string
	ip    netip.Addr
}

// bindRow is one name handed out at a key's address, valid until exp
// (unix nanoseconds, the TTL only; the floor is added when read).
type bindRow struct {
	name string
	exp  int64
}

// NewBindings returns an empty table.
func NewBindings(opts BindingsOptions) *Bindings {
	b := &Bindings{floor: opts.Floor, now: opts.Now, seed: maphash.MakeSeed()}
	switch {
	case b.floor == 0:
		b.floor = DefaultBindingsFloor
	case b.floor < 0:
		b.floor = 0
	}
	if b.now == nil {
		b.now = time.Now
	}
	for i := range b.shards {
		b.shards[i].m = map[bindKey][]bindRow{}
	}
	b.SetMaxBytes(opts.MaxBytes)
	return b
}

// SetMaxBytes sets the bound (0: DefaultBindingsBytes); a shrunk table
// sheds what is over it at once.
func (b *Bindings) SetMaxBytes(n int64) {
	if n <= 0 {
		n = DefaultBindingsBytes
	}
	if old := b.maxBytes.Swap(n); old == 0 || n >= old {
		return
	}
	perShard, now := max(1, n/bindShards), b.now().UnixNano()
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		if sh.bytes > perShard {
			sh.nextSweep = 0
			b.makeRoomLocked(sh, bindKey{}, now, perShard)
		}
		sh.mu.Unlock()
	}
}

func (b *Bindings) shard(k bindKey) *bindShard {
	return &b.shards[maphash.Comparable(b.seed, k)%bindShards]
}

func keySize(k bindKey) int64   { return int64(keyCost + len(k.agent)) }
func rowSize(name string) int64 { return int64(rowCost + len(name)) }

// Bind records that agent was told name is at each of ips, for ttl. name
// is canonicalised (lower case, no trailing dot). An invalid address, an
// empty name or a negative TTL is an error, and nothing is recorded. A
// binding already known for at least as long is not written again.
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
	now := b.now().UnixNano()
	exp := now + int64(ttl)
	perShard := max(1, b.maxBytes.Load()/bindShards)
	var kept string // name cloned once, shared by every row of this answer
	for _, ip := range ips {
		k := bindKey{agent: agent, ip: ip.Unmap()}
		sh := b.shard(k)
		sh.mu.Lock()
		rows, known := sh.m[k]
		i := slices.IndexFunc(rows, func(r bindRow) bool { return r.name == name })
		switch {
		case i >= 0 && rows[i].exp >= exp:
			// already known for at least as long: no write
		case i >= 0:
			rows[i].exp = exp
		default:
			if kept == "" {
				kept = strings.Clone(name) // hold no query's packet
			}
			if !known {
				k.agent = strings.Clone(agent)
				sh.bytes += keySize(k)
			}
			sh.m[k] = append(rows, bindRow{name: kept, exp: exp})
			sh.rows++
			sh.bytes += rowSize(kept)
			if sh.bytes > perShard {
				b.makeRoomLocked(sh, k, now, perShard)
			}
		}
		sh.mu.Unlock()
	}
	return nil
}

// makeRoomLocked brings sh within perShard: expired bindings first (a
// whole sweep at most once a second), then the sampled address whose
// bindings expire first. The address just written (keep) stays.
func (b *Bindings) makeRoomLocked(sh *bindShard, keep bindKey, now, perShard int64) {
	limit := now - int64(b.floor)
	if now >= sh.nextSweep {
		sh.nextSweep = now + int64(time.Second)
		for k, rows := range sh.m {
			live := rows[:0]
			for _, r := range rows {
				if r.exp >= limit {
					live = append(live, r)
				} else {
					sh.rows--
					sh.bytes -= rowSize(r.name)
				}
			}
			clear(rows[len(live):]) // drop the names' references
			if len(live) == 0 {
				delete(sh.m, k)
				sh.deleted++
				sh.bytes -= keySize(k)
			} else {
				sh.m[k] = live
			}
		}
	}
	for sh.bytes > perShard {
		var victim bindKey
		var vexp int64
		found, n := false, 0
		for k, rows := range sh.m { // map order is random: a sample
			if k == keep {
				continue
			}
			last := int64(0)
			for _, r := range rows {
				last = max(last, r.exp)
			}
			if !found || last < vexp {
				victim, vexp, found = k, last, true
			}
			if last < limit {
				break // dead already
			}
			if n++; n >= evictSample {
				break
			}
		}
		if !found {
			// Only keep is left (one address handed out for many
			// names, a CDN's): its rows expiring first go, but the
			// one just written.
			rows := sh.m[keep]
			if len(rows) <= 1 {
				return
			}
			j := 0
			for i := range rows[:len(rows)-1] {
				if rows[i].exp < rows[j].exp {
					j = i
				}
			}
			sh.rows--
			sh.bytes -= rowSize(rows[j].name)
			sh.m[keep] = slices.Delete(rows, j, j+1)
			continue
		}
		for _, r := range sh.m[victim] {
			sh.rows--
			sh.bytes -= rowSize(r.name)
		}
		delete(sh.m, victim)
		sh.deleted++
		sh.bytes -= keySize(victim)
	}
	if sh.deleted > 2*len(sh.m)+64 {
		// A map never shrinks, and under churn its deleted slots
		// grow it past what it holds (a third more heap than charged,
		// measured): copied into a map of its size, amortised over the
		// deletions that made it necessary.
		m := make(map[bindKey][]bindRow, len(sh.m))
		for k, rows := range sh.m {
			m[k] = rows
		}
		sh.m, sh.deleted = m, 0
	}
}

// NamesFor returns the names handed out to agent for ip whose TTL plus
// the floor has not passed, sorted; nil when there are none. An
// IPv4-mapped address is looked up as the IPv4 address it maps.
func (b *Bindings) NamesFor(agent string, ip netip.Addr) []string {
	if !ip.IsValid() {
		return nil
	}
	limit := b.now().Add(-b.floor).UnixNano()
	k := bindKey{agent: agent, ip: ip.Unmap()}
	sh := b.shard(k)
	var out []string
	sh.mu.RLock()
	for _, r := range sh.m[k] {
		if r.exp >= limit {
			out = append(out, r.name)
		}
	}
	sh.mu.RUnlock()
	slices.Sort(out)
	return out
}

// BindingsStats is what the table holds and may hold.
type BindingsStats struct {
	Rows     int   // bindings held, expired ones not yet swept included
	Bytes    int64 // their memory, as charged
	MaxBytes int64 // the bound
}

// Stats reports the table's size and bound.
func (b *Bindings) Stats() BindingsStats {
	s := BindingsStats{MaxBytes: b.maxBytes.Load()}
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		s.Rows += sh.rows
		s.Bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return s
}

// Len is the number of bindings held, expired ones not yet swept
// included.
func (b *Bindings) Len() int { return b.Stats().Rows }
