package certs

import (
	"crypto/tls"
	"testing"
	"time"
)

func TestLeafCacheLRU(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Hour)
	type step struct {
		op     string // "put", "hit", "miss"
		host   string
		expire bool // put an entry already due for renewal
	}
	for _, tc := range []struct {
		name  string
		size  int
		steps []step
		len   int
	}{
		{
			name: "evicts least recently used",
			size: 2,
			steps: []step{
				{op: "put", host: "a"}, {op: "put", host: "b"},
				{op: "hit", host: "a"}, // a is now most recent
				{op: "put", host: "c"}, // evicts b
				{op: "miss", host: "b"}, {op: "hit", host: "a"}, {op: "hit", host: "c"},
			},
			len: 2,
		},
		{
			name: "re-put refreshes without growing",
			size: 2,
			steps: []step{
				{op: "put", host: "a"}, {op: "put", host: "b"}, {op: "put", host: "a"},
				{op: "put", host: "c"}, // evicts b, not a
				{op: "hit", host: "a"}, {op: "miss", host: "b"},
			},
			len: 2,
		},
		{
			name:  "due for renewal is a miss",
			size:  4,
			steps: []step{{op: "put", host: "a", expire: true}, {op: "miss", host: "a"}},
			len:   1,
		},
		{
			name:  "size one",
			size:  1,
			steps: []step{{op: "put", host: "a"}, {op: "put", host: "b"}, {op: "miss", host: "a"}, {op: "hit", host: "b"}},
			len:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLeafCache(tc.size)
			certs := map[string]*tls.Certificate{}
			for i, s := range tc.steps {
				switch s.op {
				case "put":
					certs[s.host] = &tls.Certificate{}
					renew := later
					if s.expire {
						renew = now
					}
					c.put(s.host, certs[s.host], renew)
				case "hit", "miss":
					got, ok := c.get(s.host, now)
					if ok != (s.op == "hit") || (ok && got != certs[s.host]) {
						t.Fatalf("step %d: get(%q) = %p,%v; want %s", i, s.host, got, ok, s.op)
					}
				}
			}
			if got := c.len(); got != tc.len {
				t.Errorf("len = %d, want %d", got, tc.len)
			}
		})
	}
}

// TestIssuerCacheEvicts checks the bound through the public API: an evicted
// host is signed again.
func TestIssuerCacheEvicts(t *testing.T) {
	iss := newTestIssuer(t, newTestCA(t), IssuerOptions{CacheSize: 2})
	for _, tc := range []struct {
		host   string
		issued uint64
	}{
		{"a.example", 1},
		{"b.example", 2},
		{"a.example", 2}, // cached, and now most recent
		{"c.example", 3}, // evicts b
		{"a.example", 3},
		{"b.example", 4}, // evicted: signed again, evicts c
		{"c.example", 5},
	} {
		if _, err := iss.Leaf(tc.host); err != nil {
			t.Fatal(err)
		}
		if got := iss.Issued(); got != tc.issued {
			t.Fatalf("after Leaf(%s): Issued() = %d, want %d", tc.host, got, tc.issued)
		}
	}
	if got := iss.cache.len(); got != 2 {
		t.Fatalf("cache holds %d leaves, want 2", got)
	}
}
