package rules

import (
	"strings"
	"testing"
)

func TestRulesAndGroups(t *testing.T) {
	e := mustLoad(t, `default: deny
hosts:
  - allow: ok.example
    id: ok
  - deny: bad.example
lists:
  - path: ads.txt
    format: plain
    id-prefix: ads
  - path: more.txt
    format: plain
`, map[string]string{"ads.txt": "x.example\ny.example\n", "more.txt": "z.example\n"})

	rs := e.Rules()
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	if got := strings.Join(ids, " "); !strings.HasPrefix(got, "default ok ") || !strings.Contains(got, "policy.yaml:5") || !strings.HasSuffix(got, " ads more.txt") {
		t.Fatalf("rule ids %q, want default, ok, the id-less rule's file:line, then the lists", got)
	}
	if !rs[len(rs)-1].List || rs[1].List || rs[0].Label != "default" {
		t.Fatalf("rules %+v: kinds wrong", rs)
	}

	tests := []struct{ host, rule, group string }{
		{"ok.example", "ok", "ok"},
		{"y.example", "ads:2", "ads"},
		{"z.example", "more.txt:1", "more.txt"},
		{"bad.example", "", ""}, // an id-less rule: file:line, counted as itself
		{"other.example", "default", "default"},
	}
	for _, tt := range tests {
		d := e.Host("", host(t, tt.host, 443))
		if tt.rule != "" && d.Rule != tt.rule {
			t.Errorf("%s: rule %q, want %q", tt.host, d.Rule, tt.rule)
		}
		want := tt.group
		if want == "" {
			want = d.Rule
		}
		if got := e.RuleGroup(d.Rule); got != want {
			t.Errorf("%s: RuleGroup(%q) = %q, want %q", tt.host, d.Rule, got, want)
		}
	}
	for _, r := range []string{"", ":", "ads:", "ads:x", "builtin:self", "ads:1:2"} {
		if got := e.RuleGroup(r); got != r {
			t.Errorf("RuleGroup(%q) = %q, want it unchanged", r, got)
		}
	}
}
