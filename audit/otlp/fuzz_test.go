package otlp

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
)

// An endpoint is either refused, without echoing a password, or a URL
// that exports can go to: http(s), a host, a path, no credentials.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:4318", "https://h/v1/traces", "http://u:pw@h", "localhost:4318", "http://[::1]:4318/x",
		"HTTP://H", "http://h/%zz", "http://h?x#y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseEndpoint(s)
		if err != nil {
			if u, perr := url.Parse(s); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) > 3 && strings.Contains(err.Error(), pw) {
					t.Fatalf("the error shows the password: %v", err)
				}
			}
			return
		}
		u, perr := url.Parse(got)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Path == "" || u.RawQuery != "" {
			t.Fatalf("accepted %q as %q (%v)", s, got, perr)
		}
	})
}

// Whatever the events and their order, every event but tunnel-opens is
// placed exactly once by the time the linker is flushed, under a parent
// span derived from one of its causes or at a root.
func FuzzLinker(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, uint8(3))
	f.Add([]byte{9, 9, 9, 1, 1, 2, 200, 17}, uint8(1))
	f.Fuzz(func(t *testing.T, plan []byte, maxPending uint8) {
		if len(plan) > 300 {
			return
		}
		kinds := []string{"http", "llm", "mcp", "connect", kindTunnelOpen}
		id := func(b byte) string { return string(rune('a' + b%12)) }
		placedN := map[string]int{}
		want := map[string]bool{}
		l := newLinker(func(e *audit.Event, p placed) {
			placedN[e.ID]++
			if !p.trace.IsValid() {
				t.Fatalf("%s placed in no trace", e.ID)
			}
			if p.parent.IsValid() {
				var buf [3]string
				ok := false
				for _, c := range causes(e, &buf) {
					ok = ok || p.parent == spanOf(c)
				}
				if !ok {
					t.Fatalf("%s placed under a span none of its causes has", e.ID)
				}
			}
		}, 8, int(maxPending%16)+1, time.Second)
		now := time.Now()
		seen := map[string]bool{}
		for i := 0; i+2 < len(plan); i += 3 {
			e := &audit.Event{ID: id(plan[i]) + string(rune('0'+i%10)) + id(byte(i/10)), Kind: kinds[int(plan[i+1])%len(kinds)]}
			if plan[i+2]&1 != 0 {
				e.Parent = id(plan[i+2] >> 1)
			}
			if plan[i+2]&2 != 0 {
				e.CausedBy = id(plan[i+2] >> 2)
			}
			if seen[e.ID] {
				continue // ids are unique in a run
			}
			seen[e.ID] = true
			if e.Kind != kindTunnelOpen {
				want[e.ID] = true
			}
			l.add(e, now)
			now = now.Add(time.Duration(plan[i+2]) * 10 * time.Millisecond)
			l.expire(now)
		}
		l.flush()
		if l.nwaiting != 0 || len(l.waiting) != 0 {
			t.Fatalf("%d still waiting after flush", l.nwaiting)
		}
		for id := range want {
			if placedN[id] != 1 {
				t.Fatalf("%s placed %d times", id, placedN[id])
			}
		}
	})
}
