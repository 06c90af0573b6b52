package rules

import (
	"path/filepath"
	"strings"
	"testing"
)

const precedencePolicy = `default: deny
hosts:
  - allow: .example.com             # line 3
  - deny: "*.example.com"           # line 4
  - allow: www.example.com          # line 5
  - deny: .tie.test                 # line 6
  - allow: .tie.test                # line 7
  - deny: .corp.test                # line 8
    important: true
  - allow: api.corp.test            # line 10
  - allow: .dev.test                # line 11
    agents: [builder]
  - allow: ports.test               # line 13
    ports: [443, "8000-8099"]
  - deny: .watch.test               # line 15
    mode: report
    id: watch
  - allow: exact.test               # line 18
  - deny: .exact.test               # line 19
  - deny: "*.sub.test"              # line 20
  - allow: sub.test                 # line 21
  - deny: [a.multi.test, b.multi.test]  # line 22
  - deny: .deep.imp.test            # line 23
    important: true
  - deny: .imp.test                 # line 25
    important: true
  - allow: x.deep.imp.test          # line 27
`

func TestHostPrecedence(t *testing.T) {
	e := mustLoad(t, precedencePolicy, nil)
	at := func(line string) string { return "policy.yaml:" + line }
	tests := []struct {
		agent, host string
		port        uint16
		want        string // outcome
		rule        string // rule id suffix ("" = default)
	}{
		{"", "example.com", 443, "allow", at("3")},
		{"", "a.example.com", 443, "deny", at("4")},     // same name, tie → deny
		{"", "www.example.com", 443, "allow", at("5")},  // exact beats wildcard
		{"", "x.www.example.com", 443, "deny", at("4")}, // exact does not cover subdomains
		{"", "a.tie.test", 443, "deny", at("6")},
		{"", "tie.test", 443, "deny", at("6")},
		{"", "api.corp.test", 443, "deny", at("8")}, // important beats more specific allow
		{"", "corp.test", 443, "deny", at("8")},
		{"builder", "x.dev.test", 443, "allow", at("11")},
		{"other", "x.dev.test", 443, "deny", "default"},
		{"", "x.dev.test", 443, "deny", "default"},
		{"", "ports.test", 443, "allow", at("13")},
		{"", "ports.test", 8050, "allow", at("13")},
		{"", "ports.test", 80, "deny", "default"},
		{"", "a.watch.test", 443, "report", "watch"},
		{"", "exact.test", 443, "allow", at("18")}, // exact beats .name at the full host
		{"", "a.exact.test", 443, "deny", at("19")},
		{"", "sub.test", 443, "allow", at("21")},
		{"", "a.sub.test", 443, "deny", at("20")},
		{"", "a.multi.test", 443, "deny", at("22")},
		{"", "b.multi.test", 443, "deny", at("22")},
		{"", "c.multi.test", 443, "deny", "default"},
		{"", "y.deep.imp.test", 443, "deny", at("23")}, // most specific important
		{"", "x.deep.imp.test", 443, "deny", at("23")},
		{"", "imp.test", 443, "deny", at("25")},
		{"", "nothing.test", 443, "deny", "default"},
	}
	for _, tt := range tests {
		d := e.Host(tt.agent, host(t, tt.host, tt.port))
		rule := d.Rule
		if rule != "default" {
			rule = filepath.Base(rule)
		}
		if d.Outcome() != tt.want || rule != tt.rule {
			t.Errorf("Host(%q, %s:%d) = %s rule %q (%s); want %s rule %q", tt.agent, tt.host, tt.port, d.Outcome(), d.Rule, d.Reason, tt.want, tt.rule)
		}
	}
}

func TestDefaultsAndModes(t *testing.T) {
	e := mustLoad(t, "default: allow\nhosts:\n  - deny: bad.test\n", nil)
	if d := e.Host("", host(t, "good.test", 443)); d.Outcome() != "allow" || d.Rule != "default" || !strings.HasSuffix(d.Source, "policy.yaml") {
		t.Errorf("default allow: %+v", d)
	}
	e = mustLoad(t, "mode: report\nhosts:\n  - deny: bad.test\n  - deny: strict.test\n    mode: enforce\n", nil)
	for h, want := range map[string]string{"bad.test": "report", "strict.test": "deny", "other.test": "report"} {
		if d := e.Host("", host(t, h, 443)); d.Outcome() != want || !d.Allowed() != (want == "deny") {
			t.Errorf("report policy %s: %s, want %s", h, d.Outcome(), want)
		}
	}
	if d := e.Host("", host(t, "10.0.0.1", 443)); d.Outcome() != "report" {
		t.Errorf("report policy non-public: %+v", d)
	}
}

func TestResolveFilesStats(t *testing.T) {
	p := writePolicy(t, `resolve:
  upstream.test: [127.0.0.1, "::1"]
  Other.Test: 127.0.0.2
hosts:
  - allow: [a.test, b.test]
ips:
  - allow: 127.0.0.1
lists:
  - path: l.txt
    format: plain
`, map[string]string{"l.txt": "x.test\ny.test\nx.test\nbad name\n"})
	e, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if ips, ok := e.Resolve("upstream.test"); !ok || len(ips) != 2 || ips[0] != ip("127.0.0.1") {
		t.Errorf("Resolve = %v %v", ips, ok)
	}
	if ips, ok := e.Resolve("OTHER.test."); !ok || ips[0] != ip("127.0.0.2") {
		t.Errorf("Resolve canonical = %v %v", ips, ok)
	}
	if _, ok := e.Resolve("nope.test"); ok {
		t.Error("Resolve of unknown name")
	}
	files := e.Files()
	if len(files) != 2 || files[0] != p || files[1] != filepath.Join(filepath.Dir(p), "l.txt") {
		t.Errorf("Files = %v", files)
	}
	s := e.Stats()
	if s.HostRules != 2 || s.CIDRRules != 1 || len(s.Lists) != 1 || s.Lists[0].Entries != 2 || s.Lists[0].Duplicates != 1 || s.Lists[0].Skipped != 1 {
		t.Errorf("Stats = %+v", s)
	}
	pe, err := Parse("embedded", []byte("default: allow\n"))
	if err != nil || len(pe.Files()) != 0 || pe.Host("", host(t, "a.test", 443)).Source != "embedded" {
		t.Errorf("Parse: %v %v", pe, err)
	}
}

// The request path must not allocate when nothing matches.
func TestMissNoAlloc(t *testing.T) {
	e := mustLoad(t, precedencePolicy+"ips:\n  - deny: 1.2.3.4\n", nil)
	h := host(t, "a.b.nothing.example.org", 443)
	lit := host(t, "93.184.216.34", 443)
	noAllocs(t, "miss", func() {
		_ = e.Host("agent", h)
		_ = e.Host("agent", lit)
		_ = e.IP("agent", lit.IP, 443)
	})
}

func TestEmptySections(t *testing.T) {
	e := mustLoad(t, "default: allow\nhosts:\nips:\nlists:\nagents:\n", nil)
	if d := e.Host("", host(t, "a.test", 443)); d.Outcome() != "allow" {
		t.Errorf("%+v", d)
	}
}
