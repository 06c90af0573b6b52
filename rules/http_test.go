package rules

import (
	"path/filepath"
	"strings"
	"testing"
)

const httpPolicy = `default: deny
http:
  - deny: "DELETE api.github.com/repos/**"
    id: no-repo-delete
  - allow: "GET,head .example.com/public/*"
    id: public
  - deny: "* .example.com/admin/**"
    agents: [builder]
    id: admin
  - deny: "POST uploads.example/"
    id: uploads
  - deny: "* .tie.test/x"
    id: tie-deny
  - allow: "* .tie.test/x"
    id: tie-allow
  - allow: "* a.host.test"
    id: host-exact
  - deny: "* .host.test/x/**"
    id: host-tree
  - deny: "GET .path.test/v1/**"
    id: v1
  - allow: "GET .path.test/v1/public/**"
    id: v1-public
  - allow: "GET .path.test/v1/exact"
    id: v1-exact
  - deny: "* .imp.test/secret/**"
    important: true
    id: secret
  - allow: "GET x.imp.test/secret/ok"
    id: secret-ok
  - allow: "* ports.test/**"
    ports: [8443]
    id: ports-8443
  - deny: "* ports.test"
    id: ports-any
  - deny: "* .watch.test"
    mode: report
    id: watch
  - allow: "TRACE trace.test/debug"
    id: trace-debug
  - allow: "* startrace.test"
    id: star-trace
  - deny: ["PUT multi.test/a", "PATCH multi.test/b"]
    id: multi
  - deny: "GET *.sub.test"
    id: sub
  - allow: "GET line.test/x"
`

func TestHTTPPrecedence(t *testing.T) {
	e := mustLoad(t, httpPolicy, nil)
	tests := []struct {
		agent, host string
		port        uint16
		method      string
		path        string
		want, rule  string
	}{
		{"", "api.github.com", 443, "DELETE", "/repos/a/b", "deny", "no-repo-delete"},
		{"", "api.github.com", 443, "delete", "/repos", "deny", "no-repo-delete"}, // method case, trailing /**
		{"", "api.github.com", 443, "DELETE", "/public/../repos/x", "deny", "no-repo-delete"},
		{"", "api.github.com", 443, "DELETE", "/repos//x", "deny", "no-repo-delete"},
		{"", "api.github.com", 443, "GET", "/repos/a", "allow", "http:default"},
		{"", "api.github.com", 443, "DELETE", "/reposx", "allow", "http:default"},
		{"", "x.api.github.com", 443, "DELETE", "/repos/a", "allow", "http:default"}, // exact host only
		{"", "www.example.com", 443, "GET", "/public/a", "allow", "public"},
		{"", "example.com", 443, "HEAD", "/public/a", "allow", "public"},
		{"", "www.example.com", 443, "POST", "/public/a", "allow", "http:default"},
		{"", "www.example.com", 443, "GET", "/public/a/b", "allow", "http:default"},
		{"builder", "www.example.com", 443, "GET", "/admin", "deny", "admin"},
		{"builder", "www.example.com", 443, "GET", "/public/../admin/x", "deny", "admin"},
		{"other", "www.example.com", 443, "GET", "/admin", "allow", "http:default"},
		{"", "uploads.example", 443, "POST", "/", "deny", "uploads"},
		{"", "uploads.example", 443, "POST", "", "deny", "uploads"},
		{"", "uploads.example", 443, "POST", "/x", "allow", "http:default"},
		{"", "uploads.example", 443, "GET", "/", "allow", "http:default"},
		{"", "a.tie.test", 443, "GET", "/x", "deny", "tie-deny"},                  // tie: deny
		{"", "a.host.test", 443, "GET", "/x/y", "allow", "host-exact"},            // host before path
		{"", "b.host.test", 443, "GET", "/x/y", "deny", "host-tree"},              //
		{"", "p.path.test", 443, "GET", "/v1/x", "deny", "v1"},                    //
		{"", "p.path.test", 443, "GET", "/v1", "deny", "v1"},                      // trailing /**
		{"", "p.path.test", 443, "GET", "/v1/public/x", "allow", "v1-public"},     // longer prefix
		{"", "p.path.test", 443, "GET", "/v1/exact", "allow", "v1-exact"},         // literal
		{"", "p.path.test", 443, "GET", "/v1/exact/", "deny", "v1"},               //
		{"", "x.imp.test", 443, "GET", "/secret/ok", "deny", "secret"},            // important
		{"", "x.imp.test", 443, "GET", "/other", "allow", "http:default"},         //
		{"", "ports.test", 8443, "GET", "/x", "allow", "ports-8443"},              // ports
		{"", "ports.test", 443, "GET", "/x", "deny", "ports-any"},                 //
		{"", "a.watch.test", 443, "GET", "/", "report", "watch"},                  // rule report mode
		{"", "multi.test", 443, "PUT", "/a", "deny", "multi"},                     // several values
		{"", "multi.test", 443, "PATCH", "/b", "deny", "multi"},                   //
		{"", "multi.test", 443, "PUT", "/b", "allow", "http:default"},             //
		{"", "a.sub.test", 443, "GET", "/", "deny", "sub"},                        // *.x
		{"", "sub.test", 443, "GET", "/", "allow", "http:default"},                // not the apex
		{"", "line.test", 443, "GET", "/x", "allow", "policy.yaml:47"},            // id from the line
		{"", "nothing.test", 443, "DELETE", "/anything", "allow", "http:default"}, // no rules for the host
		{"", "127.0.0.1", 443, "DELETE", "/repos/a", "allow", "http:default"},     // IP literal: no host rules
		// TRACE and TRACK.
		{"", "trace.test", 443, "TRACE", "/debug", "allow", "trace-debug"},
		{"", "trace.test", 443, "TRACE", "/other", "deny", "builtin:trace"},
		{"", "trace.test", 443, "TRACK", "/debug", "deny", "builtin:trace"},
		{"", "startrace.test", 443, "TRACE", "/", "deny", "builtin:trace"}, // "*" does not open TRACE
		{"", "startrace.test", 443, "GET", "/", "allow", "star-trace"},
		{"", "nothing.test", 443, "trace", "/", "deny", "builtin:trace"},
		{"", "127.0.0.1", 443, "TRACK", "/", "deny", "builtin:trace"},
		{"builder", "www.example.com", 443, "TRACE", "/admin/x", "deny", "admin"}, // a deny rule still names itself
	}
	for _, tt := range tests {
		d := e.HTTP().Request(Request{Agent: tt.agent, Host: host(t, tt.host, tt.port), Method: tt.method, Path: tt.path})
		rule := d.Rule
		if strings.Contains(rule, "policy.yaml") {
			rule = filepath.Base(rule)
		}
		if d.Outcome() != tt.want || rule != tt.rule {
			t.Errorf("HTTP(%q, %s:%d, %s %q) = %s rule %q (%s); want %s rule %q",
				tt.agent, tt.host, tt.port, tt.method, tt.path, d.Outcome(), d.Rule, d.Reason, tt.want, tt.rule)
		}
		if d.Source == "" || d.Reason == "" {
			t.Errorf("HTTP(%s %s%s): empty Source or Reason: %+v", tt.method, tt.host, tt.path, d)
		}
	}
}

func TestHTTPDecisionFields(t *testing.T) {
	e := mustLoad(t, httpPolicy, nil)
	d := e.HTTP().Request(Request{Agent: "", Host: host(t, "api.github.com", 443), Method: "DELETE", Path: "/repos/x"})
	if !strings.HasSuffix(d.Source, "policy.yaml:3") || !strings.Contains(d.Reason, "DELETE api.github.com/repos/**") {
		t.Errorf("rule decision: %+v", d)
	}
	d = e.HTTP().Request(Request{Agent: "", Host: host(t, "www.example.com", 443), Method: "GET", Path: "/public/x"})
	if !strings.Contains(d.Reason, "GET,HEAD .example.com/public/*") {
		t.Errorf("methods not normalised in reason: %+v", d)
	}
	d = e.HTTP().Request(Request{Agent: "", Host: host(t, "nothing.test", 443), Method: "GET", Path: "/"})
	if d.Rule != "http:default" || !strings.HasSuffix(d.Source, "policy.yaml") || d.Report {
		t.Errorf("default: %+v", d)
	}
	d = e.HTTP().Request(Request{Agent: "", Host: host(t, "nothing.test", 443), Method: "TRACE", Path: "/"})
	if d.Rule != "builtin:trace" || !strings.HasSuffix(d.Source, "policy.yaml") || d.Report || d.Allowed() {
		t.Errorf("trace: %+v", d)
	}
}

func TestHTTPReportMode(t *testing.T) {
	e := mustLoad(t, `mode: report
http:
  - deny: "* a.test"
  - deny: "* b.test"
    mode: enforce
`, nil)
	for _, tt := range []struct{ host, method, want string }{
		{"a.test", "GET", "report"},
		{"b.test", "GET", "deny"},
		{"c.test", "TRACE", "report"},
		{"b.test", "TRACE", "deny"}, // the enforcing deny rule decides
		{"c.test", "GET", "allow"},
	} {
		if d := e.HTTP().Request(Request{Agent: "", Host: host(t, tt.host, 443), Method: tt.method, Path: "/"}); d.Outcome() != tt.want {
			t.Errorf("%s %s: %+v, want %s", tt.method, tt.host, d, tt.want)
		}
	}
}

func TestHTTPStats(t *testing.T) {
	e := mustLoad(t, httpPolicy, nil)
	if s := e.Stats(); s.HTTPRules != 22 || s.HostRules != 0 {
		t.Errorf("stats: %+v", s)
	}
}

func TestHTTPPolicyErrors(t *testing.T) {
	tests := []loadErrorCase{
		{"not a list", "http: x\n", `:1: http must be a list`},
		{"one field", "http:\n  - deny: GET\n", `:2: bad http rule "GET"`},
		{"three fields", "http:\n  - deny: \"GET a.test /x\"\n", `:2: bad http rule`},
		{"bad method", "http:\n  - deny: \"GE(T a.test\"\n", `:2: bad method "GE(T"`},
		{"empty method", "http:\n  - deny: \"GET,,POST a.test\"\n", `:2: bad method ""`},
		{"star in list", "http:\n  - deny: \"GET,* a.test\"\n", `:2: bad method "*"`},
		{"star glued", "http:\n  - deny: \"GE* a.test\"\n", `:2: bad method "GE*"`},
		{"bad host", "http:\n  - deny: \"GET a.*.com/x\"\n", `:2: bad host pattern "a.*.com"`},
		{"bare star host", "http:\n  - deny: \"GET */x\"\n", `:2: bad host pattern "*"`},
		{"ip host", "http:\n  - deny: \"GET 10.0.0.1/x\"\n", `:2: IP literal "10.0.0.1" in an http rule`},
		{"ip6 host", "http:\n  - deny: \"GET [::1]/x\"\n", `:2: IP literal "[::1]" in an http rule`},
		{"port", "http:\n  - deny: \"GET a.test:443/x\"\n", `:2: port in "a.test:443"`},
		{"port v6", "http:\n  - deny: \"GET [::1]:443/x\"\n", `:2: port in "[::1]:443"`},
		{"ips id-prefix", "ips:\n  - allow: 10.0.0.0/8\n    id-prefix: x\n", `:3: id-prefix belongs to lists`},
		{"hosts id-prefix", "hosts:\n  - allow: a.test\n    id-prefix: x\n", `:3: id-prefix belongs to lists`},
		{"triple star", "http:\n  - deny: \"GET a.test/***\"\n", `:2: bad path glob "/***"`},
		{"glued double star", "http:\n  - deny: \"GET a.test/a**\"\n", `:2: bad path glob "/a**"`},
		{"query", "http:\n  - deny: \"GET a.test/s?q=1\"\n", `:2: path "/s?q=1": query strings`},
		{"escaped", "http:\n  - deny: \"GET a.test/a%2Fb\"\n", `:2: path "/a%2Fb": paths are matched decoded`},
		{"dot segment", "http:\n  - deny: \"GET a.test/a/../b\"\n", `:2: bad path glob "/a/../b"`},
		{"double slash", "http:\n  - deny: \"GET a.test//a\"\n", `:2: bad path glob "//a": empty segment`},
		{"list item line", "http:\n  - deny:\n    - GET a.test/\n    - \"GET a.test/***\"\n", `:4: bad path glob`},
		{"important allow", "http:\n  - allow: \"GET a.test\"\n    important: true\n", `:2: important applies to deny rules only`},
		{"id-prefix", "http:\n  - allow: \"GET a.test\"\n    id-prefix: x\n", `:3: id-prefix belongs to lists`},
		{"unknown key", "http:\n  - allow: \"GET a.test\"\n    path: /x\n", `:3: unknown rule key "path"`},
		{"dup id with host rule", "hosts:\n  - allow: a.test\n    id: x\nhttp:\n  - deny: \"GET a.test\"\n    id: x\n", `:5: duplicate rule id "x"`},
		{"intercept scalar", "intercept: some\n", `:1: intercept must be "all" or a list`},
		{"intercept mapping", "intercept: {a: b}\n", `:1: intercept must be a list`},
		{"passthrough all", "passthrough: all\n", `:1: passthrough must be a list`},
		{"all in list", "intercept:\n  - all\n", `:2: "all" in a list`},
		{"intercept bad pattern", "intercept:\n  - \"*x.com\"\n", `:2: bad host pattern "*x.com"`},
		{"intercept ip", "intercept:\n  - 10.0.0.1\n", `:2: IP literal "10.0.0.1" in intercept`},
		{"passthrough ip", "passthrough:\n  - \"[::1]\"\n", `:2: IP literal "[::1]" in passthrough`},
		{"intercept unknown key", "intercept:\n  - host: a.test\n    agent: [x]\n", `:3: unknown intercept key "agent"`},
		{"intercept no host", "intercept:\n  - agents: [x]\n", `:2: intercept entry without a host`},
		{"intercept bad agent", "intercept:\n  - {host: a.test, agents: [\"a b\"]}\n", `:2: bad agent name "a b"`},
		{"intercept nested list", "intercept:\n  - [a.test]\n", `:2: expected a host pattern`},
		{"passthrough host list line", "passthrough:\n  - host:\n      - a.test\n      - \"a b\"\n", `:4: bad host pattern "a b"`},
	}
	checkLoadErrors(t, tests)
}

func TestHTTPNoAlloc(t *testing.T) {
	e := mustLoad(t, httpPolicy+`intercept:
  - .example.com
passthrough:
  - .pinned.example.com
`, nil)
	miss := host(t, "a.b.nothing.test", 443)
	hit := host(t, "www.example.com", 443)
	pinned := host(t, "x.pinned.example.com", 443)
	ipHost := host(t, "127.0.0.1", 443)
	for name, fn := range map[string]func(){
		"http miss":        func() { e.HTTP().Request(Request{Agent: "builder", Host: miss, Method: "GET", Path: "/a/b/c"}) },
		"http trace miss":  func() { e.HTTP().Request(Request{Agent: "builder", Host: miss, Method: "TRACE", Path: "/"}) },
		"http ip":          func() { e.HTTP().Request(Request{Agent: "builder", Host: ipHost, Method: "GET", Path: "/"}) },
		"http hit":         func() { e.HTTP().Request(Request{Agent: "builder", Host: hit, Method: "GET", Path: "/admin/x"}) },
		"http host no hit": func() { e.HTTP().Request(Request{Agent: "builder", Host: hit, Method: "POST", Path: "/public/x"}) },
		"intercept miss":   func() { e.Intercept("builder", miss) },
		"intercept hit":    func() { e.Intercept("builder", hit) },
		"passthrough":      func() { e.Intercept("builder", pinned) },
	} {
		noAllocs(t, name, fn)
	}
}

func BenchmarkHTTPMiss(b *testing.B) {
	e := mustLoad(b, httpPolicy, nil)
	h := host(b, "a.b.nothing.test", 443)
	for b.Loop() {
		e.HTTP().Request(Request{Agent: "builder", Host: h, Method: "GET", Path: "/a/b/c"})
	}
}

func BenchmarkHTTPHit(b *testing.B) {
	e := mustLoad(b, httpPolicy, nil)
	h := host(b, "api.github.com", 443)
	for b.Loop() {
		e.HTTP().Request(Request{Agent: "builder", Host: h, Method: "DELETE", Path: "/repos/agentg/agentg/issues/1"})
	}
}

const bypassPolicy = `default: allow
http:
  - deny: "DELETE api.example/repos/**"
    id: no-delete
  - allow: "GET,POST api.example/public/**"
    id: public
  - deny: "* api.example/admin/**"
    id: admin
  - deny: "GET api.example/v1/*.JSON"
    id: json
  - deny: "* api.example/ünï/**"
    id: unicode
  - deny: "* api.example/k/**"
    id: k
  - deny: "GET api.example/a;v=1/secret"
    id: semi
  - allow: "TRACE api.example/debug"
    id: trace-ok
  - deny: "* strict.example/**"
    id: catch-all
  - allow: "GET strict.example/public/**"
    id: strict-public
  - deny: "PUT api.example/report/**"
    mode: report
    id: watch
`

func TestRequestBypasses(t *testing.T) {
	e := mustLoad(t, bypassPolicy, nil)
	tests := []struct {
		name, host, method, path string
		overrides                []string
		want, rule               string
	}{
		// Deny rules ignore case; allow rules do not.
		{"deny", "api.example", "DELETE", "/repos/x", nil, "deny", "no-delete"},
		{"deny upper", "api.example", "DELETE", "/REPOS/x", nil, "deny", "no-delete"},
		{"deny mixed", "api.example", "delete", "/Repos", nil, "deny", "no-delete"},
		{"deny wildcard upper", "api.example", "GET", "/V1/A.Json", nil, "deny", "json"},
		{"deny wildcard", "api.example", "GET", "/v1/a.json", nil, "deny", "json"},
		{"deny unicode fold", "api.example", "GET", "/ÜNÏ/x", nil, "deny", "unicode"},
		{"deny kelvin sign", "api.example", "GET", "/\u212a/x", nil, "deny", "k"},
		{"not a deny prefix", "api.example", "DELETE", "/REPOSX", nil, "allow", "http:default"},
		{"allow as sent", "strict.example", "GET", "/public/x", nil, "allow", "strict-public"},
		{"allow never widens by case", "strict.example", "GET", "/PUBLIC/x", nil, "deny", "catch-all"},
		// Parameters: deny segments match stripped, allow as sent.
		{"params on a denied segment", "api.example", "DELETE", "/repos;a/x", nil, "deny", "no-delete"},
		{"params, upper", "api.example", "DELETE", "/REPOS;jsessionid=1/x", nil, "deny", "no-delete"},
		{"params on the last segment", "api.example", "GET", "/admin;x", nil, "deny", "admin"},
		{"params on a wildcard segment", "api.example", "GET", "/v1/a.json;x", nil, "deny", "json"},
		{"params in the glob", "api.example", "GET", "/a;v=1/secret", nil, "deny", "semi"},
		{"params in the glob and the path", "api.example", "GET", "/A;V=1/secret;x", nil, "deny", "semi"},
		{"params no deny names pass", "api.example", "GET", "/other;x/y", nil, "allow", "http:default"},
		{"params inside an allow pass", "strict.example", "GET", "/public/a;b", nil, "allow", "strict-public"},
		{"params do not widen an allow", "strict.example", "GET", "/public;x/y", nil, "deny", "catch-all"},
		// Parameters that change the path's shape.
		{"dot-dot with params", "api.example", "GET", "/public/..;/admin/x", nil, "deny", "admin"},
		{"dot-dot with params, no deny", "api.example", "GET", "/public/..;/x", nil, "allow", "http:default"},
		{"empty segment with params", "api.example", "GET", "/;x/admin", nil, "deny", "admin"},
		{"dot with params", "api.example", "DELETE", "/.;x/repos/y", nil, "deny", "no-delete"},
		{"dot-dot inside an allow", "strict.example", "GET", "/public/a/..;/b", nil, "allow", "strict-public"},
		{"dot-dot out of an allow", "strict.example", "GET", "/public/..;/secret", nil, "deny", "catch-all"},
		// Method override headers.
		{"override denied", "api.example", "POST", "/repos/x", []string{"DELETE"}, "deny", "no-delete"},
		{"override lower case", "api.example", "POST", "/repos/x", []string{"delete"}, "deny", "no-delete"},
		{"override same", "api.example", "GET", "/public/x", []string{"GET"}, "allow", "public"},
		{"override allowed", "api.example", "POST", "/public/x", []string{"GET"}, "allow", "public"},
		{"one of several overrides", "api.example", "POST", "/repos/x", []string{"GET", "DELETE"}, "deny", "no-delete"},
		{"override list is not a token", "api.example", "POST", "/x", []string{"DELETE, PUT"}, "deny", "builtin:method-override"},
		{"empty override", "api.example", "POST", "/x", []string{""}, "deny", "builtin:method-override"},
		{"override with space", "api.example", "POST", "/x", []string{"GET "}, "deny", "builtin:method-override"},
		{"override TRACE", "api.example", "GET", "/x", []string{"TRACE"}, "deny", "builtin:trace"},
		{"override TRACK", "api.example", "GET", "/debug", []string{"track"}, "deny", "builtin:trace"},
		{"override TRACE allowed by name", "api.example", "GET", "/debug", []string{"TRACE"}, "allow", "http:default"},
		{"method denied, override allowed", "api.example", "DELETE", "/repos/x", []string{"GET"}, "deny", "no-delete"},
		{"report override", "api.example", "POST", "/report/x", []string{"PUT"}, "report", "watch"},
		{"deny beats report", "api.example", "POST", "/report/x", []string{"PUT", "FROB", "x y"}, "deny", "builtin:method-override"},
		{"override on an IP literal", "127.0.0.1", "GET", "/", []string{"TRACE"}, "deny", "builtin:trace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.HTTP().Request(Request{Host: host(t, tt.host, 443), Method: tt.method, Path: tt.path, Overrides: tt.overrides})
			if d.Outcome() != tt.want || d.Rule != tt.rule {
				t.Errorf("Request(%s %s%s, overrides %q) = %s rule %q (%s); want %s rule %q",
					tt.method, tt.host, tt.path, tt.overrides, d.Outcome(), d.Rule, d.Reason, tt.want, tt.rule)
			}
			if d.Reason == "" || d.Source == "" {
				t.Errorf("empty Reason or Source: %+v", d)
			}
			if tt.overrides == nil {
				if h := e.HTTP().Request(Request{Agent: "", Host: host(t, tt.host, 443), Method: tt.method, Path: tt.path}); h != d {
					t.Errorf("HTTP and Request disagree: %+v vs %+v", h, d)
				}
			}
		})
	}
	d := e.HTTP().Request(Request{Host: host(t, "api.example", 443), Method: "POST", Path: "/repos/x", Overrides: []string{"DELETE"}})
	if !strings.Contains(d.Reason, "method override DELETE") {
		t.Errorf("override reason: %q", d.Reason)
	}
}

func TestRequestNoAlloc(t *testing.T) {
	e := mustLoad(t, bypassPolicy, nil)
	h := host(t, "api.example", 443)
	for name, q := range map[string]Request{
		"miss":              {Host: host(t, "a.nothing.test", 443), Method: "GET", Path: "/a/b"},
		"deny hit":          {Host: h, Method: "DELETE", Path: "/REPOS/x"},
		"params":            {Host: h, Method: "DELETE", Path: "/repos;a/x"},
		"overrides allowed": {Host: h, Method: "POST", Path: "/public/x", Overrides: []string{"GET", "HEAD"}},
		"bad override":      {Host: h, Method: "POST", Path: "/x", Overrides: []string{"a b"}},
	} {
		noAllocs(t, name, func() { e.HTTP().Request(q) })
	}
}

func BenchmarkRequestOverride(b *testing.B) {
	e := mustLoad(b, bypassPolicy, nil)
	q := Request{Host: host(b, "api.example", 443), Method: "POST", Path: "/public/a/b", Overrides: []string{"GET"}}
	for b.Loop() {
		e.HTTP().Request(q)
	}
}
