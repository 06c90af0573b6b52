package rules

import (
	"strings"
	"testing"
)

func TestIntercept(t *testing.T) {
	path := writePolicy(t, `intercept:
  - api.github.com
  - .openai.com
  - host: "*.corp.test"
    agents: [builder]
  - host: [p.test, q.test]
    ports: [443]
  - ci.test
passthrough:
  - .pinned.openai.com
  - lonely.test
  - {host: api.openai.com, agents: [ci]}
`, nil)
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(n string) string { return path + ":" + n }
	tests := []struct {
		agent, host string
		port        uint16
		want        bool
		id          string
	}{
		{"", "api.github.com", 443, true, at("2")},
		{"", "x.api.github.com", 443, false, ""},
		{"", "openai.com", 443, true, at("3")},
		{"", "api.openai.com", 443, true, at("3")},
		{"ci", "api.openai.com", 443, false, "passthrough " + at("12")}, // per-agent passthrough
		{"", "x.pinned.openai.com", 443, false, "passthrough " + at("10")},
		{"", "pinned.openai.com", 443, false, "passthrough " + at("10")},
		{"", "lonely.test", 443, false, "passthrough " + at("11")}, // passthrough names itself
		{"builder", "a.corp.test", 443, true, at("4")},
		{"other", "a.corp.test", 443, false, ""},
		{"builder", "corp.test", 443, false, ""},
		{"", "p.test", 443, true, at("6")},
		{"", "q.test", 443, true, at("6")},
		{"", "p.test", 8443, false, ""},
		{"", "1.2.3.4", 443, false, ""},
		{"", "nothing.test", 443, false, ""},
	}
	for _, tt := range tests {
		got, id := e.Intercept(tt.agent, host(t, tt.host, tt.port))
		if got != tt.want || id != tt.id {
			t.Errorf("Intercept(%q, %s:%d) = %v %q; want %v %q", tt.agent, tt.host, tt.port, got, id, tt.want, tt.id)
		}
	}
	if s := e.Stats(); s.InterceptAll || s.InterceptRules != 6 || s.PassthroughRules != 3 || s.HTTPRules != 0 {
		t.Errorf("stats: %+v", s)
	}
}

func TestInterceptAll(t *testing.T) {
	e := mustLoad(t, "intercept: all\npassthrough:\n  - .pinned.example\n", nil)
	for _, tt := range []struct {
		host string
		want bool
		id   string
	}{
		{"any.test", true, "intercept:all"},
		{"1.2.3.4", true, "intercept:all"},
		{"::1", true, "intercept:all"},
		{"pinned.example", false, "passthrough "},
		{"a.pinned.example", false, "passthrough "},
	} {
		got, id := e.Intercept("", host(t, tt.host, 443))
		if got != tt.want || !strings.HasPrefix(id, tt.id) {
			t.Errorf("Intercept(%s) = %v %q; want %v %q", tt.host, got, id, tt.want, tt.id)
		}
	}
	if s := e.Stats(); !s.InterceptAll || s.PassthroughRules != 1 {
		t.Errorf("stats: %+v", s)
	}
	e = mustLoad(t, "default: allow\n", nil)
	if got, id := e.Intercept("", host(t, "a.test", 443)); got || id != "" {
		t.Errorf("no intercept section: %v %q", got, id)
	}
	e = mustLoad(t, "intercept:\npassthrough:\nhttp:\n", nil)
	if got, id := e.Intercept("", host(t, "a.test", 443)); got || id != "" {
		t.Errorf("empty sections: %v %q", got, id)
	}
}

func TestTunnelECH(t *testing.T) {
	path := writePolicy(t, `intercept:
  - .example.com
passthrough:
  - host: .pinned.example.com
    ech: allow
  - host: strict.pinned.example.com
    ech: refuse
  - plain.example.com
  - host: [ci.example, ci2.example]
    agents: [ci]
    ech: allow
`, nil)
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(n string) string { return "passthrough " + path + ":" + n }
	tests := []struct {
		agent, host string
		want        TunnelPolicy
	}{
		{"", "a.pinned.example.com", TunnelPolicy{Rule: at("4"), AllowECH: true}},
		{"", "strict.pinned.example.com", TunnelPolicy{Rule: at("6")}}, // the most specific entry decides
		{"", "plain.example.com", TunnelPolicy{Rule: at("8")}},         // default: refuse
		{"ci", "ci2.example", TunnelPolicy{Rule: at("9"), AllowECH: true}},
		{"other", "ci2.example", TunnelPolicy{}},
		{"", "www.example.com", TunnelPolicy{Intercept: true, Rule: path + ":2"}},
		{"", "nothing.test", TunnelPolicy{}},
	}
	for _, tt := range tests {
		h := host(t, tt.host, 443)
		got := e.Tunnel(tt.agent, h)
		if got != tt.want {
			t.Errorf("Tunnel(%q, %s) = %+v; want %+v", tt.agent, tt.host, got, tt.want)
		}
		if yes, rule := e.Intercept(tt.agent, h); yes != got.Intercept || rule != got.Rule {
			t.Errorf("Intercept(%q, %s) = %v %q; Tunnel says %+v", tt.agent, tt.host, yes, rule, got)
		}
	}
	checkLoadErrors(t, []loadErrorCase{
		{"ech on intercept", "intercept:\n  - host: a.test\n    ech: allow\n", `:3: ech applies to passthrough entries only`},
		{"bad ech", "passthrough:\n  - host: a.test\n    ech: maybe\n", `:3: "maybe" is not one of allow, refuse`},
		{"passthrough unknown key", "passthrough:\n  - host: a.test\n    sni: x\n", `:3: unknown passthrough key "sni" (want host, agents, ports, ech)`},
	})
}
