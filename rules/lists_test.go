package rules

import (
	"strings"
	"testing"
)

func TestPlainList(t *testing.T) {
	e := mustLoad(t, `default: allow
lists:
  - path: lists/deny.txt
    format: plain
  - path: allow.txt
    format: plain
    action: allow
    id-prefix: ok
`, map[string]string{
		"lists/deny.txt": "# comment\n\nEvil.Example\r\nbad name here\n*.sub.test   # wildcard\nx..y\n" + strings.Repeat("a", 5000) + ".test\nevil.example\n10.0.0.1\n",
		"allow.txt":      "good.evil.example\n",
	})
	tests := []struct{ host, want, rule, source string }{
		{"evil.example", "deny", "lists/deny.txt:3", "lists/deny.txt:3"},
		{"a.b.evil.example", "deny", "lists/deny.txt:3", "lists/deny.txt:3"},
		{"good.evil.example", "allow", "ok:1", "allow.txt:1"}, // more specific allow
		{"x.good.evil.example", "allow", "ok:1", "allow.txt:1"},
		{"sub.test", "allow", "default", ""},
		{"a.sub.test", "deny", "lists/deny.txt:5", "lists/deny.txt:5"},
	}
	for _, tt := range tests {
		d := e.Host("", host(t, tt.host, 443))
		if d.Outcome() != tt.want || d.Rule != tt.rule || tt.source != "" && d.Source != tt.source {
			t.Errorf("%s: %+v", tt.host, d)
		}
	}
	if d := e.Host("", host(t, "evil.example", 443)); d.Reason != "host evil.example denied by list lists/deny.txt" {
		t.Errorf("reason %q", d.Reason)
	}
	s := e.Stats().Lists[0]
	// skipped: "bad name here", "x..y", the long line, the IP literal.
	if s.Entries != 2 || s.Skipped != 4 || s.Duplicates != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestHostsList(t *testing.T) {
	e := mustLoad(t, `default: allow
lists:
  - path: hosts
    format: hosts
`, map[string]string{"hosts": `# header
127.0.0.1 localhost localhost.localdomain
::1 localhost ip6-localhost
255.255.255.255 broadcasthost
0.0.0.0 0.0.0.0
0.0.0.0 ads.example tracker.example # trailing comment
127.0.0.1	Tabs.Example
:: v6.example
not-an-ip bad.example
0.0.0.0
0.0.0.0 bad_name!.example
`})
	for h, want := range map[string]string{
		"ads.example": "deny", "x.tracker.example": "deny", "tabs.example": "deny", "v6.example": "deny",
		"bad.example": "allow", "localhost": "allow", "example": "allow",
	} {
		if d := e.Host("", host(t, h, 443)); d.Outcome() != want {
			t.Errorf("%s: %+v", h, d)
		}
	}
	if d := e.Host("", host(t, "tracker.example", 443)); d.Rule != "hosts:6" {
		t.Errorf("rule %q", d.Rule)
	}
	if s := e.Stats().Lists[0]; s.Entries != 4 || s.Skipped != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestAdblockList(t *testing.T) {
	e := mustLoad(t, `default: allow
hosts:
  - allow: .ok.test
lists:
  - path: ads.txt
    format: adblock
    id-prefix: ads
`, map[string]string{"ads.txt": `[Adblock Plus 2.0]
! Title: test
||ads.example^
@@||good.ads.example^
||tracker.example^$important
@@||x.tracker.example^
||third.example^$third-party
example.com##.banner
##.ad
||path.example^/ads/*
/banner/*
|http://plain.example/
||pipe.example^|
# comment
||imp.ok.test^$important
||plain.ok.test^
||*.wild.example^
`})
	tests := []struct{ host, want, rule string }{
		{"ads.example", "deny", "ads:3"},
		{"x.ads.example", "deny", "ads:3"},
		{"good.ads.example", "allow", "ads:4"},
		{"a.good.ads.example", "allow", "ads:4"},
		{"x.tracker.example", "deny", "ads:5"}, // important beats the exception
		{"third.example", "allow", "default"},
		{"path.example", "allow", "default"},
		{"pipe.example", "deny", "ads:13"},
		{"imp.ok.test", "deny", "ads:15"},   // important list entry beats the policy allow
		{"plain.ok.test", "deny", "ads:16"}, // more specific deny beats .ok.test
		{"other.ok.test", "allow", "policy.yaml:3"},
	}
	for _, tt := range tests {
		d := e.Host("", host(t, tt.host, 443))
		rule := d.Rule
		if i := strings.LastIndex(rule, "/"); i >= 0 {
			rule = rule[i+1:]
		}
		if d.Outcome() != tt.want || rule != tt.rule {
			t.Errorf("%s: %+v", tt.host, d)
		}
	}
	// skipped: $third-party, example.com##, ##.ad, path, /banner/, |http, *.wild
	if s := e.Stats().Lists[0]; s.Entries != 7 || s.Skipped != 7 {
		t.Errorf("stats %+v", s)
	}
}

func TestListOptions(t *testing.T) {
	e := mustLoad(t, `default: allow
lists:
  - path: l.txt
    format: plain
    agents: [ci]
    mode: report
    important: true
hosts:
  - allow: a.l.test
`, map[string]string{"l.txt": "l.test\n"})
	if d := e.Host("ci", host(t, "a.l.test", 443)); d.Outcome() != "report" || d.Rule != "l.txt:1" {
		t.Errorf("ci: %+v", d)
	}
	if d := e.Host("other", host(t, "a.l.test", 443)); d.Outcome() != "allow" {
		t.Errorf("other: %+v", d)
	}
}
