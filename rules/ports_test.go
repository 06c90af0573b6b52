package rules

import (
	"strings"
	"testing"
)

func TestPorts(t *testing.T) {
	e := mustLoad(t, "default: allow\nports: [80, 443, \"8000-8099\"]\n", nil)
	for _, tt := range []struct {
		port uint16
		want string
	}{{80, "allow"}, {443, "allow"}, {8000, "allow"}, {8099, "allow"}, {8100, "deny"}, {22, "deny"}} {
		d := e.Host("", host(t, "x.test", tt.port))
		if d.Outcome() != tt.want {
			t.Errorf("port %d: %+v", tt.port, d)
		}
		if tt.want == "deny" && (d.Rule != "ports" || !strings.HasSuffix(d.Source, "policy.yaml:2")) {
			t.Errorf("port %d: rule %q source %q", tt.port, d.Rule, d.Source)
		}
	}
	if d := e.IP("", ip("1.1.1.1"), 22); d.Rule != "ports" {
		t.Errorf("IP port check: %+v", d)
	}
}
