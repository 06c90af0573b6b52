package creds

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Status says whether a secret was read and when it was last handed out,
// without its value and without reading it; a reload's new Store keeps
// the last use.
func TestStoreStatus(t *testing.T) {
	t.Setenv("AGENTG_STATUS_TEST", "v-93c1")
	st := NewStore(map[string]Source{
		"ok":      {Kind: KindEnv, Env: "AGENTG_STATUS_TEST"},
		"missing": {Kind: KindEnv, Env: "AGENTG_STATUS_TEST_UNSET"},
	})
	now := time.Unix(1000, 0)
	st.now = func() time.Time { return now }
	for _, name := range []string{"ok", "missing"} {
		s, ok := st.Status(name)
		if !ok || s.Held || s.Error != "" || !s.LastUse.IsZero() {
			t.Fatalf("%s before any read: %+v %v", name, s, ok)
		}
	}
	if _, ok := st.Status("nope"); ok {
		t.Fatal("a secret the store does not hold has a status")
	}
	ctx := context.Background()
	if _, err := st.Get(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := st.Get(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "missing"); err == nil {
		t.Fatal("an unset variable was read")
	}
	s, _ := st.Status("ok")
	if !s.Held || s.Error != "" || !s.LastUse.Equal(now) {
		t.Errorf("ok: %+v, want held, last use %v", s, now)
	}
	s, _ = st.Status("missing")
	if s.Held || !strings.Contains(s.Error, "secret missing (env AGENTG_STATUS_TEST_UNSET)") || !s.LastUse.IsZero() {
		t.Errorf("missing: %+v", s)
	}
	if strings.Contains(s.Error, "v-93c1") {
		t.Error("a status holds a value")
	}

	next := NewStore(map[string]Source{"ok": {Kind: KindEnv, Env: "AGENTG_STATUS_TEST"}, "new": Inline("x")})
	next.KeepLastUse(st)
	if s, _ := next.Status("ok"); !s.LastUse.Equal(now) || s.Held {
		t.Errorf("after a reload: %+v, want the last use kept and nothing held", s)
	}
	if s, _ := next.Status("new"); !s.LastUse.IsZero() {
		t.Errorf("a new secret inherited a last use: %+v", s)
	}
}
