package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 8: a DNS guard's breach, and a name's decision, are explained by
// agentg check the way hosts and tools are.
func TestCLICheckDNS(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "dns.yaml")
	os.WriteFile(pol, []byte(`default: allow
hosts:
  - deny: "*.evil.example"
    id: no-evil
  - deny: watched.example
    mode: report
dns:
  block: refused
  limits:
    max_label_length: 20
    subdomains: 50/m
    query_rate: off
`), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"denied name, any case", []string{"--dns", "WWW.Evil.Example."}, []string{"dns WWW.Evil.Example. A", "deny", "rule=no-evil", "answer=refused", "dns.yaml:3"}},
		{"allowed name", []string{"--dns", "ok.example/AAAA"}, []string{"dns ok.example AAAA", "allow", "answer=resolve"}},
		{"report mode resolves", []string{"--dns", "watched.example"}, []string{"report mode; would answer refused"}},
		{"refused type", []string{"--dns", "ok.example/any"}, []string{"deny", "rule=dns:refuse_types", "query type ANY"}},
		{"long label", []string{"--dns", strings.Repeat("x", 21) + ".example"}, []string{"deny", "rule=dns:max_label_length", "max_label_length 20"}},
		{"counting guards in force", []string{"--dns", "ok.example"}, []string{"guard dns:subdomains", "limit=50/1m0s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runAgentg(t, append([]string{"check", pol}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "guard dns:query_rate") {
				t.Errorf("a guard turned off is shown:\n%s", out)
			}
		})
	}
	if code, out := runAgentg(t, "check", pol, "--dns", "x.example/BOGUS"); code != 1 || !strings.Contains(out, `unknown query type "BOGUS"`) {
		t.Errorf("bad type: exit %d:\n%s", code, out)
	}
}
