package rules

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentg/agentg/addr"
)

// writePolicy writes policy.yaml and the given extra files into a fresh
// directory and returns the policy's path.
func writePolicy(t testing.TB, policy string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t testing.TB, policy string, files map[string]string) *Engine {
	t.Helper()
	e, err := Load(writePolicy(t, policy, files))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func host(t testing.TB, s string, port uint16) addr.Host {
	t.Helper()
	h, err := addr.Canonical(s)
	if err != nil {
		t.Fatal(err)
	}
	h.Port = port
	return h
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// loadErrorCase is a policy that must not load, and the ":line: message"
// its error must name after the policy file.
type loadErrorCase struct{ name, policy, want string }

func checkLoadErrors(t *testing.T, tests []loadErrorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writePolicy(t, tt.policy, nil))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "load policy ") || !strings.Contains(err.Error(), "policy.yaml"+tt.want) {
				t.Fatalf("error %q, want it to contain policy.yaml%s", err, tt.want)
			}
		})
	}
}
