package state

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentg/agentg/internal/atomicfile"
)

// inventoryVersion is the format of InventoryFile.
const inventoryVersion = 1

// inventoryTable is the servers and tools seen: the server table, and the
// pin table read as the tools' list; written to InventoryFile.
type inventoryTable struct {
	*core
	serverMu sync.Mutex // serialises server writes (then memdb writer)
	invMu    sync.Mutex // serialises inventory writes
}

// serverRec is a server in the inventory table; lastSeen and unlisted are
// shared by every version of the record.
type serverRec struct {
	key       string
	name      string
	urls      []string
	info      ServerInfo
	revisions []string
	firstSeen time.Time
	lastSeen  *atomic.Int64
	unlisted  *atomic.Uint64
}

func (r *serverRec) memKey() string { return r.key }

// covers reports whether the record already holds all a sighting says.
func (r *serverRec) covers(s ServerSighting) bool {
	return (s.URL == "" || slices.Contains(r.urls, s.URL)) &&
		(s.Info == ServerInfo{} || s.Info == r.info) &&
		(s.Revision == "" || slices.Contains(r.revisions, s.Revision))
}

// ObserveServer answers Store.ObserveServer.
func (t *inventoryTable) ObserveServer(s ServerSighting) (bool, error) {
	if s.Server == "" {
		return false, fmt.Errorf("%w: server sighting without a server name", ErrInvalid)
	}
	if t.closed.Load() {
		return false, ErrClosed
	}
	now := t.now()
	key := serverKeyString(s.Server)
	if r, _ := t.first(tableServer, key).(*serverRec); r != nil && r.covers(s) {
		t.touchServer(r, now)
		return false, nil
	}
	t.serverMu.Lock()
	defer t.serverMu.Unlock()
	txn := t.db.Txn(true)
	defer txn.Abort()
	obj, err := txn.First(tableServer, indexID, key)
	if err != nil {
		return false, fmt.Errorf("state: observe server: %w", err)
	}
	var rec serverRec
	old, seen := obj.(*serverRec)
	if seen {
		rec = *old
		rec.urls, rec.revisions = slices.Clone(old.urls), slices.Clone(old.revisions)
	} else {
		n, err := txn.Get(tableServer, indexID)
		if err != nil {
			return false, fmt.Errorf("state: observe server: %w", err)
		}
		count := 0
		for o := n.Next(); o != nil; o = n.Next() {
			count++
		}
		if count >= t.opts.MaxServers {
			return false, fmt.Errorf("%w: %d servers", ErrFull, t.opts.MaxServers)
		}
		rec = serverRec{key: key, name: s.Server, firstSeen: now, lastSeen: new(atomic.Int64), unlisted: new(atomic.Uint64)}
	}
	rec.urls = appendRecent(rec.urls, s.URL, maxURLsPerServer)
	rec.revisions = appendRecent(rec.revisions, s.Revision, maxRevisionsPerServer)
	if s.Info != (ServerInfo{}) {
		rec.info = s.Info
	}
	if err := txn.Insert(tableServer, &rec); err != nil {
		return false, fmt.Errorf("state: observe server: %w", err)
	}
	txn.Commit()
	t.touchServer(&rec, now)
	return !seen, nil
}

// appendRecent adds v (if new and not empty) to list, keeping the last max.
func appendRecent(list []string, v string, max int) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	list = append(list, v)
	if len(list) > max {
		list = slices.Delete(list, 0, len(list)-max)
	}
	return list
}

func (t *inventoryTable) touchServer(r *serverRec, now time.Time) {
	r.lastSeen.Store(nanos(now))
	if !t.invDirty.Load() {
		t.invDirty.Store(true)
	}
}

// CountCall answers Store.CountCall: atomic counters, no write. A call to a tool
// the server never listed counts on the server (UnlistedCalls), so that
// invented tool names cannot grow the inventory.
func (t *inventoryTable) CountCall(server, tool string) {
	txn := t.db.Txn(false)
	obj, _ := txn.First(tableServer, indexID, serverKeyString(server))
	srv, _ := obj.(*serverRec)
	if obj, _ := txn.First(tablePin, indexID, pinKeyString(server, tool)); obj != nil {
		obj.(*pinRec).calls.Add(1)
	} else if srv != nil {
		srv.unlisted.Add(1)
	} else {
		return // a server never observed nor pinned: nothing to count on
	}
	if srv != nil {
		t.touchServer(srv, t.now())
	} else if !t.invDirty.Load() {
		t.invDirty.Store(true)
	}
}

// Snapshot answers Store.Snapshot. Servers known only through their pins (seen
// in an earlier run, say) are listed too.
func (t *inventoryTable) Snapshot() Inventory {
	txn := t.db.Txn(false)
	inv := Inventory{Version: inventoryVersion, Written: utc(t.now())}
	byName := make(map[string]*InventoryServer)
	server := func(name string) *InventoryServer {
		if s := byName[name]; s != nil {
			return s
		}
		s := &InventoryServer{Name: name, URLs: []string{}, Revisions: []string{}, Tools: []InventoryTool{}}
		byName[name] = s
		return s
	}
	if it, err := txn.Get(tableServer, indexID); err == nil {
		for obj := it.Next(); obj != nil; obj = it.Next() {
			r := obj.(*serverRec)
			s := server(r.name)
			s.URLs = append(s.URLs, r.urls...)
			s.Info = r.info
			s.Revisions = append(s.Revisions, r.revisions...)
			s.FirstSeen = utc(r.firstSeen)
			s.LastSeen = fromNanos(r.lastSeen.Load())
			s.UnlistedCalls = r.unlisted.Load()
		}
	}
	if it, err := txn.Get(tablePin, indexID); err == nil {
		for obj := it.Next(); obj != nil; obj = it.Next() {
			r := obj.(*pinRec)
			p := r.pin()
			if name, tool, host, ok := SplitEgressPin(p.Server, p.Tool); ok {
				s := server(name)
				s.Egress = append(s.Egress, InventoryEgress{Tool: tool, Host: host, FirstSeen: utc(p.FirstSeen), LastSeen: p.LastSeen})
				continue
			}
			s := server(p.Server)
			s.Tools = append(s.Tools, InventoryTool{
				Name: p.Tool, Hash: p.Hash, Accepted: p.Accepted, Changed: !p.Previous.IsZero(),
				FirstSeen: utc(p.FirstSeen), LastSeen: p.LastSeen, Calls: r.calls.Load(),
			})
			if s.FirstSeen.IsZero() || p.FirstSeen.Before(s.FirstSeen) {
				s.FirstSeen = utc(p.FirstSeen)
			}
			if p.LastSeen.After(s.LastSeen) {
				s.LastSeen = p.LastSeen
			}
		}
	}
	inv.Servers = make([]InventoryServer, 0, len(byName))
	for _, s := range byName {
		slices.SortFunc(s.Tools, func(a, b InventoryTool) int { return cmp.Compare(a.Name, b.Name) })
		inv.Servers = append(inv.Servers, *s)
	}
	slices.SortFunc(inv.Servers, func(a, b InventoryServer) int { return cmp.Compare(a.Name, b.Name) })
	return inv
}

func (t *inventoryTable) file() string { return filepath.Join(t.opts.DataDir, InventoryFile) }

// Write writes the Snapshot to InventoryFile atomically. The
// store calls it every WriteInterval when something changed, and on
// Close.
func (t *inventoryTable) Write() error {
	if t.opts.DataDir == "" {
		return nil
	}
	t.invMu.Lock()
	defer t.invMu.Unlock()
	t.invDirty.Store(false)
	b, err := marshalFile(t.Snapshot())
	if err == nil {
		err = atomicfile.Write(t.file(), b, fileMode)
	}
	if err != nil {
		t.invDirty.Store(true)
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// load seeds servers and call counts from the last run's
// InventoryFile, so the inventory spans restarts. Tools are the pins'
// (loaded first); a tool that is no longer pinned drops out.
func (t *inventoryTable) load() error {
	inv, err := readInventoryFile(t.file())
	if err != nil || inv == nil {
		return err
	}
	txn := t.db.Txn(true)
	defer txn.Abort()
	for i, s := range inv.Servers {
		if s.Name == "" {
			return fmt.Errorf("inventory %s: server %d has no name", t.file(), i)
		}
		if i >= t.opts.MaxServers {
			break
		}
		rec := &serverRec{
			key: serverKeyString(s.Name), name: s.Name, info: s.Info, firstSeen: utc(s.FirstSeen),
			lastSeen: new(atomic.Int64), unlisted: new(atomic.Uint64),
		}
		for _, u := range s.URLs {
			rec.urls = appendRecent(rec.urls, u, maxURLsPerServer)
		}
		for _, r := range s.Revisions {
			rec.revisions = appendRecent(rec.revisions, r, maxRevisionsPerServer)
		}
		rec.lastSeen.Store(nanos(s.LastSeen))
		rec.unlisted.Store(s.UnlistedCalls)
		if err := txn.Insert(tableServer, rec); err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		for _, t := range s.Tools {
			if obj, _ := txn.First(tablePin, indexID, pinKeyString(s.Name, t.Name)); obj != nil {
				obj.(*pinRec).calls.Store(t.Calls)
			}
		}
	}
	txn.Commit()
	return nil
}

// readInventoryFile reads an inventory file; a missing one is nil.
func readInventoryFile(path string) (*Inventory, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	var inv Inventory
	if err := unmarshalFile(b, &inv); err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	if inv.Version != inventoryVersion {
		return nil, fmt.Errorf("inventory %s: version %d, this agentg reads version %d", path, inv.Version, inventoryVersion)
	}
	return &inv, nil
}

// ReadInventory returns the inventory a server last wrote to dataDir's
// InventoryFile. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func ReadInventory(dataDir string) (Inventory, error) {
	path := filepath.Join(dataDir, InventoryFile)
	if _, err := os.Stat(path); err != nil {
		return Inventory{}, fmt.Errorf("inventory: %w", err)
	}
	inv, err := readInventoryFile(path)
	if err != nil {
		return Inventory{}, err
	}
	return *inv, nil
}
