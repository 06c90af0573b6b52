package rules

import (
	"testing"

	"github.com/miekg/dns"
)

// Explain strings together the steps the doors take, in their order: a
// request is decided by the host, then its static addresses, then the
// http rules folded in as the exchange path folds them.
func TestExplain(t *testing.T) {
	e := mustLoad(t, `default: deny
resolve:
  inside.test: 10.0.0.7
  outside.test: 93.184.216.34
hosts:
  - allow: [inside.test, outside.test, api.test]
  - deny: watched.test
    mode: report
    id: watched
http:
  - allow: "GET watched.test/**"
    id: get-watched
  - deny: "DELETE api.test/**"
    id: no-delete
intercept: [api.test]
`, nil)
	tests := []struct {
		name      string
		q         Request
		action    Action
		report    bool
		rule      string
		intercept bool
	}{
		{"host allowed, address public", Request{Host: host(t, "outside.test", 443)}, Allow, false, e.file + ":6", false},
		{"static address non-public", Request{Host: host(t, "inside.test", 443)}, Deny, false, "builtin:non-public:private", false},
		{"request to a non-public address never reaches http rules", Request{Host: host(t, "inside.test", 443), Method: "GET", Path: "/"}, Deny, false, "builtin:non-public:private", false},
		{"http deny", Request{Host: host(t, "api.test", 443), Method: "DELETE", Path: "/x"}, Deny, false, "no-delete", true},
		{"http default", Request{Host: host(t, "api.test", 443), Method: "GET", Path: "/x"}, Allow, false, "http:default", true},
		// The host's report-mode deny stays the decision when an http
		// rule allows: the event says the request would have been denied.
		{"report-mode host deny not overwritten by an allow", Request{Host: host(t, "watched.test", 443), Method: "GET", Path: "/a"}, Deny, true, "watched", false},
		{"host denied by default", Request{Host: host(t, "elsewhere.test", 443), Method: "GET", Path: "/"}, Deny, false, "default", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Explain(tt.q)
			d := x.Decision
			if d.Action != tt.action || d.Report != tt.report || d.Rule != tt.rule || x.Tunnel.Intercept != tt.intercept {
				t.Errorf("Explain = %v report=%v rule %q intercept=%v, want %v report=%v rule %q intercept=%v",
					d.Action, d.Report, d.Rule, x.Tunnel.Intercept, tt.action, tt.report, tt.rule, tt.intercept)
			}
		})
	}
}

// HTTPRules.Decide folds the http answer into the decision so far as the
// exchange path does; quietDefault leaves the host's decision when no
// rule matched.
func TestHTTPDecide(t *testing.T) {
	e := mustLoad(t, `http:
  - deny: "POST api.test/**"
    id: no-post
`, nil)
	h := host(t, "api.test", 443)
	hostAllow := Decision{Action: Allow, Rule: "host-rule"}
	hostReport := Decision{Action: Deny, Report: true, Rule: "host-report"}
	tests := []struct {
		name   string
		prior  Decision
		method string
		quiet  bool
		rule   string
	}{
		{"default speaks in a tunnel", hostAllow, "GET", false, "http:default"},
		{"default quiet on the explicit listener", hostAllow, "GET", true, "host-rule"},
		{"deny wins over an allow", hostAllow, "POST", true, "no-post"},
		{"deny wins over a report", hostReport, "POST", false, "no-post"},
		{"allow keeps a report", hostReport, "GET", false, "host-report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.HTTP().Decide(tt.prior, Request{Host: h, Method: tt.method, Path: "/x"}, tt.quiet)
			if d.Rule != tt.rule {
				t.Errorf("Decide = rule %q, want %q", d.Rule, tt.rule)
			}
		})
	}
}

// DNSRules.Explain: the stateless guards first, then the name.
func TestDNSExplain(t *testing.T) {
	e := mustLoad(t, `default: allow
hosts:
  - deny: bad.test
    id: bad
dns:
  limits:
    refuse_types: [ANY]
`, nil)
	tests := []struct {
		name  string
		q     DNSQuery
		rule  string
		allow bool
	}{
		{"guard before the name", DNSQuery{Name: "bad.test.", Type: dns.TypeANY}, RuleDNSType, false},
		{"name denied", DNSQuery{Name: "bad.test.", Type: dns.TypeA}, "bad", false},
		{"name allowed", DNSQuery{Name: "good.test.", Type: dns.TypeA}, "default", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.DNS().Explain(tt.q)
			if d.Rule != tt.rule || d.Allowed() != tt.allow {
				t.Errorf("Explain = rule %q allowed=%v, want %q %v", d.Rule, d.Allowed(), tt.rule, tt.allow)
			}
		})
	}
}
