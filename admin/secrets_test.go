package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentg/agentg/rules"
)

// Secrets names each secret with its source, the bindings that use it,
// its state and last use, from the engine's store; its JSON has no value
// in it, whatever the store holds.
func TestSecrets(t *testing.T) {
	t.Setenv("ADMIN_SECRETS_TEST", "env-value-71c2d0")
	eng, err := rules.Parse("p.yaml", []byte(`
credentials:
  secrets:
    a: {env: ADMIN_SECRETS_TEST}
    b: {insecure_inline: inline-value-5e91ab}
    c: {env: ADMIN_SECRETS_TEST_UNSET}
    d: {command: [vault, read, x]}
  bindings:
    - {id: one, host: a.test, secret: a, header: {name: X-A, value: "{{secret}}"}}
    - {id: two, host: b.test, header: {name: X-B, value: "{{secret a}}/{{secret b}}"}}
    - {host: c.test, secret: c, query: key}
`))
	if err != nil {
		t.Fatal(err)
	}
	store := eng.Credentials().Store()
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := store.Get(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Get(ctx, "c"); err == nil {
		t.Fatal("an unset variable was read")
	}
	got := Secrets(eng)
	tests := []struct {
		name, source, bindings, state, err string
		inline, used                       bool
	}{
		{"a", "env ADMIN_SECRETS_TEST", "one,two", "held", "", false, true},
		{"b", "insecure_inline", "two", "held", "", true, true},
		{"c", "env ADMIN_SECRETS_TEST_UNSET", "p.yaml:11", "failed", "the environment variable is not set", false, false},
		{"d", "command vault", "", "unread", "", false, false},
	}
	if len(got) != len(tests) {
		t.Fatalf("%d secrets, want %d: %+v", len(got), len(tests), got)
	}
	for i, tt := range tests {
		s := got[i]
		if s.Name != tt.name || s.Source != tt.source || strings.Join(s.Bindings, ",") != tt.bindings || s.State != tt.state ||
			!strings.Contains(s.Error, tt.err) || s.Inline != tt.inline || (s.LastUse != nil) != tt.used {
			t.Errorf("secret %d: %+v, want %+v", i, s, tt)
		}
	}
	b, _ := json.Marshal(List[Secret]{Items: got})
	for _, v := range []string{"env-value-71c2d0", "inline-value-5e91ab"} {
		if strings.Contains(string(b), v) {
			t.Errorf("the answer holds a value: %s", b)
		}
	}
	// A policy without credentials: an empty list, not null.
	none, _ := rules.Parse("q.yaml", []byte("default: allow\n"))
	if b, _ := json.Marshal(List[Secret]{Items: Secrets(none)}); string(b) != `{"items":[]}` {
		t.Errorf("no secrets: %s", b)
	}
}
