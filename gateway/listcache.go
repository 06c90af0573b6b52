package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/agentg/agentg/rules"
)

// The list cache: each server's lists, as the guard let them through for
// one agent and renamed for the catalogue, shared by every client
// session of that agent under one policy. Without it every client
// session asks every server for every list itself (a thousand tools over
// ten servers cost tens of milliseconds per tools/list, and a copy per
// session). The guard still decides every list that is fetched, and
// every call: the cache only spares asking again what it answered a
// moment ago, for the same agent.
//
// Its contract:
//   - Keyed by agent, server, kind and session kind: an agent is only
//     ever answered with what the guard let through for that agent,
//     never with another agent's list (which may hold tools this one may
//     not see). A new policy (a reload: another *rules.Engine) empties it.
//   - A server's list_changed, heard by any session, drops that server's
//     lists of that kind for every agent, and every other session that
//     holds one is told, so it reads the list again (and tells its
//     client). A list is also asked again once older than the cache's
//     freshness, so a definition that changed without list_changed (a
//     rug pull the server does not announce) meets the guard's pin check
//     within that time.
//   - Sessions missing the same list wait for one fetch instead of each
//     asking the server; a failed fetch is not kept.

// DefaultListFresh is how long a fetched list answers for its agent.
const DefaultListFresh = 10 * time.Second

// listKey names one cached list.
type listKey struct {
	agent, server string
	k             kind
	stateless     bool
}

// serverList is one server's list of one kind, renamed for the
// catalogue. It is shared and never changed once made.
type serverList struct {
	entries []entry
}

// newServerList renames items (what the server listed, through the
// guard) into the catalogue's entries, with their signatures.
func newServerList(k kind, b rules.ServerBinding, items []any) *serverList {
	l := &serverList{entries: make([]entry, 0, len(items))}
	for _, it := range items {
		e, ok := rename(k, b.Serving, b.Name, it)
		if !ok {
			continue
		}
		j, _ := json.Marshal(e.item)
		e.sig = e.route.server + "\x00" + e.route.name + "\x00" + string(j)
		l.entries = append(l.entries, e)
	}
	return l
}

type cacheSlot struct {
	ready chan struct{} // closed once list or err is set
	list  *serverList
	err   error
	at    time.Time
}

type listCache struct {
	fresh time.Duration // <= 0: nothing is kept
	now   func() time.Time

	mu       sync.Mutex
	gen      *rules.Engine
	swept    time.Time // the last sweep of stale slots
	slots    map[listKey]*cacheSlot
	watchers map[*catalogue]struct{} // catalogues holding a list from here
}

func newListCache(fresh time.Duration) *listCache {
	return &listCache{fresh: fresh, now: time.Now, slots: map[listKey]*cacheSlot{}, watchers: map[*catalogue]struct{}{}}
}

// get is key's list under policy e: the cached one while fresh, else
// fetch's (one fetch at a time per key; the others wait for it). The
// catalogue c is told when the list is dropped (watch).
func (lc *listCache) get(ctx context.Context, e *rules.Engine, key listKey, c *catalogue, fetch func(context.Context) (*serverList, error)) (*serverList, error) {
	if lc.fresh <= 0 {
		return fetch(ctx)
	}
	for range 3 {
		lc.mu.Lock()
		if lc.gen != e {
			lc.gen, lc.slots = e, map[listKey]*cacheSlot{}
		}
		lc.sweep()
		if !c.forgotten {
			lc.watchers[c] = struct{}{}
		}
		slot := lc.slots[key]
		if slot == nil {
			slot = &cacheSlot{ready: make(chan struct{})}
			lc.slots[key] = slot
			lc.mu.Unlock()
			return lc.fill(ctx, key, slot, fetch)
		}
		lc.mu.Unlock()
		select {
		case <-slot.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if slot.err == nil && lc.now().Sub(slot.at) < lc.fresh {
			return slot.list, nil
		}
		lc.drop(key, slot) // stale, or its fetch failed: fetch again
	}
	return fetch(ctx)
}

// fill runs fetch for slot and keeps its list, unless the slot was
// dropped meanwhile (a list_changed or a reload during the fetch: what
// came back may predate it, so it answers only the caller).
func (lc *listCache) fill(ctx context.Context, key listKey, slot *cacheSlot, fetch func(context.Context) (*serverList, error)) (*serverList, error) {
	l, err := fetch(ctx)
	lc.mu.Lock()
	slot.list, slot.err, slot.at = l, err, lc.now()
	if err != nil && lc.slots[key] == slot {
		delete(lc.slots, key)
	}
	lc.mu.Unlock()
	close(slot.ready)
	return l, err
}

// sweep drops the lists no one asked for within their freshness, at
// most once per freshness: the cache holds what its agents used lately,
// not every agent and server it ever saw. lc.mu is held.
func (lc *listCache) sweep() {
	now := lc.now()
	if now.Sub(lc.swept) < lc.fresh {
		return
	}
	lc.swept = now
	for key, slot := range lc.slots {
		select {
		case <-slot.ready:
			if now.Sub(slot.at) >= lc.fresh {
				delete(lc.slots, key)
			}
		default: // being fetched
		}
	}
}

func (lc *listCache) drop(key listKey, slot *cacheSlot) {
	lc.mu.Lock()
	if lc.slots[key] == slot {
		delete(lc.slots, key)
	}
	lc.mu.Unlock()
}

// changed drops server's lists of the kinds for every agent, and returns
// the catalogues other than from that hold a list from the cache (they
// are to read theirs again).
func (lc *listCache) changed(server string, kinds []kind, from *catalogue) []*catalogue {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for key := range lc.slots {
		for _, k := range kinds {
			if key.server == server && key.k == k {
				delete(lc.slots, key)
			}
		}
	}
	out := make([]*catalogue, 0, len(lc.watchers))
	for c := range lc.watchers {
		if c != from {
			out = append(out, c)
		}
	}
	return out
}

// forget stops telling c of changes (its session ended), for good.
func (lc *listCache) forget(c *catalogue) {
	lc.mu.Lock()
	c.forgotten = true
	delete(lc.watchers, c)
	lc.mu.Unlock()
}
