package dnsfilter

import (
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
)

// The subdomain guard: a DNS tunnel encodes its data in the names it
// asks for, so it asks for many distinct names under one domain it
// controls. The guard counts, per agent and registered domain (the public
// suffix list's eTLD+1, so "a.b.example.co.uk" counts under
// "example.co.uk"), the distinct names asked for in a window
// (dns.limits.subdomains, e.g. 100/m); past the limit, new names are
// denied until the window ends. Names asked again within the window are
// not counted again, so a busy but ordinary client is not.
//
// State is bounded: at most maxWindows windows (agent × domain) and limit
// names per window. When every window is live and another is needed, the
// query is denied (fail closed) rather than tracked by nothing.

const (
	subShards  = 16
	maxWindows = 1 << 16 // per shard
)

type subdomains struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [subShards]subShard
}

type subShard struct {
	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	start time.Time
	names map[string]struct{}
}

func newSubdomains(now func() time.Time) *subdomains {
	g := &subdomains{now: now, seed: maphash.MakeSeed()}
	for i := range g.shards {
		g.shards[i].m = make(map[string]*window)
	}
	return g
}

// registered is name's registered domain, or name itself when it is a
// public suffix (or has none the list knows).
func registered(name string) string {
	if reg, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil {
		return reg
	}
	return name
}

// allow counts name for agent and reports whether it is within limit
// distinct names per win under its registered domain, which it returns.
func (g *subdomains) allow(agent, name string, limit int, win time.Duration) (string, bool) {
	reg := registered(name)
	if reg == name {
		return reg, true
	}
	return reg, g.allowKey(subKey(agent, reg), name, reg, limit, win)
}

// subKey is the guard's key for an agent's names under reg.
func subKey(agent, reg string) string { return agent + "\x00" + reg }

// allowKey is allow with the registered domain and the key already
// worked out (a cache hit's memo keeps them).
func (g *subdomains) allowKey(key, name, reg string, limit int, win time.Duration) bool {
	if reg == name {
		return true // the domain itself carries no data
	}
	sh := &g.shards[maphash.String(g.seed, key)%subShards]
	now := g.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	w := sh.m[key]
	if w == nil || now.Sub(w.start) >= win {
		if w == nil && len(sh.m) >= maxWindows {
			for k, old := range sh.m {
				if now.Sub(old.start) >= win {
					delete(sh.m, k)
				}
			}
			if len(sh.m) >= maxWindows {
				return false
			}
		}
		w = &window{start: now, names: make(map[string]struct{}, 8)}
		sh.m[key] = w
	}
	if _, seen := w.names[name]; seen {
		return true
	}
	if len(w.names) >= limit {
		return false
	}
	w.names[name] = struct{}{}
	return true
}
