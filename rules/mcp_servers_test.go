package rules

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestMCPServer(t *testing.T) {
	e := mustLoad(t, `mcp:
  servers:
    - name: jira
      url: mcp.atlassian.test/v1/**
    - name: jira-admin
      url: mcp.atlassian.test/v1/admin/**
    - name: everything
      url: .tools.test
    - name: one
      url: one.tools.test/mcp
    - name: alt-port
      url: one.tools.test/mcp
      ports: [8443]
    - name: sub
      url: "*.sub.test"
      websocket: allow
`, nil)
	tests := []struct {
		host string
		port uint16
		path string
		want string // "" for no binding
	}{
		{"mcp.atlassian.test", 443, "/v1", "jira"},
		{"mcp.atlassian.test", 443, "/v1/mcp", "jira"},
		{"mcp.atlassian.test", 80, "/v1/mcp", "jira"}, // no ports: every port
		{"mcp.atlassian.test", 443, "/v1/admin/mcp", "jira-admin"},
		{"mcp.atlassian.test", 443, "/V1/Admin/mcp", "jira-admin"},      // matched like a deny: case
		{"mcp.atlassian.test", 443, "/v1;x/mcp", "jira"},                // and segment parameters
		{"mcp.atlassian.test", 443, "/v1/x/../admin/mcp", "jira-admin"}, // cleaned
		{"mcp.atlassian.test", 443, "/v2/mcp", ""},
		{"mcp.atlassian.test", 443, "/", ""},
		{"other.atlassian.test", 443, "/v1/mcp", ""},
		{"tools.test", 443, "/anything", "everything"},
		{"a.b.tools.test", 443, "/", "everything"},
		{"one.tools.test", 443, "/mcp", "one"},
		{"one.tools.test", 443, "/mcp/x", "everything"}, // "/mcp" is that path only
		{"one.tools.test", 8443, "/mcp", "one"},         // same rank: the first entry wins
		{"sub.test", 443, "/", ""},
		{"x.sub.test", 443, "/", "sub"},
		{"127.0.0.1", 443, "/", ""},
	}
	for _, tt := range tests {
		name, ok := e.MCP().Server(host(t, tt.host, tt.port), tt.path)
		if name != tt.want || ok != (tt.want != "") {
			t.Errorf("MCPServer(%s:%d, %q) = %q %v, want %q", tt.host, tt.port, tt.path, name, ok, tt.want)
		}
	}

	for _, tt := range []struct {
		server string
		want   bool
	}{{"jira", false}, {"sub", true}, {"alt-port", false}, {"nosuch", false}} {
		if got := e.MCP().WebSocket(tt.server); got != tt.want {
			t.Errorf("MCPWebSocket(%s) = %v, want %v", tt.server, got, tt.want)
		}
	}

	if l := e.MCP().Servers(); len(l) != 6 || l[0].Name != "jira" || l[0].URL != "mcp.atlassian.test/v1/**" || !strings.HasSuffix(l[0].Source, "policy.yaml:3") || l[5].Name != "sub" {
		t.Errorf("MCPServers: %+v", l)
	}

	e = mustLoad(t, `mcp:
  servers:
    - name: a
      url: a.test
      ports: [8443]
    - name: b
      url: a.test/mcp
`, nil)
	for _, tt := range []struct {
		port uint16
		want string
	}{{8443, "b"}, {443, "b"}} { // the path makes b more specific at 8443 too
		if name, _ := e.MCP().Server(host(t, "a.test", tt.port), "/mcp"); name != tt.want {
			t.Errorf("port %d: %q, want %q", tt.port, name, tt.want)
		}
	}
	if name, ok := e.MCP().Server(host(t, "a.test", 443), "/other"); ok {
		t.Errorf("a.test:443/other bound to %q: a is only at 8443", name)
	}
}

func TestMCPTunnel(t *testing.T) {
	path := writePolicy(t, `intercept:
  - .intercepted.test
  - host: ci.test
    agents: [ci]
passthrough:
  - pinned.test
  - host: mcp.pinned.test
    ports: [8443]
mcp:
  servers:
    - name: jira
      url: mcp.intercepted.test/v1/**
    - name: github
      url: .github.test/mcp
    - name: pinned
      url: mcp.pinned.test
      ports: [443]
`, nil)
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		agent, host string
		port        uint16
		intercept   bool
		rule        string
	}{
		{"", "mcp.intercepted.test", 443, true, "mcp:server jira"}, // named by intercept too: the server decides
		{"", "x.intercepted.test", 443, true, path + ":2"},
		{"", "github.test", 443, true, "mcp:server github"}, // whatever the path
		{"any", "api.github.test", 8080, true, "mcp:server github"},
		{"", "mcp.pinned.test", 443, true, "mcp:server pinned"},
		{"", "mcp.pinned.test", 8443, false, "passthrough " + path + ":7"}, // the server is not at 8443
		{"", "pinned.test", 443, false, "passthrough " + path + ":6"},
		{"", "nothing.test", 443, false, ""},
	}
	for _, tt := range tests {
		tp := e.Tunnel(tt.agent, host(t, tt.host, tt.port))
		if tp.Intercept != tt.intercept || tp.Rule != tt.rule || tp.AllowECH {
			t.Errorf("Tunnel(%q, %s:%d) = %+v, want intercept=%v %q", tt.agent, tt.host, tt.port, tp, tt.intercept, tt.rule)
		}
	}
}

func TestPatternsOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a.test", "a.test", true},
		{"a.test", "b.test", false},
		{".a.test", "x.a.test", true},
		{"*.a.test", "a.test", false},
		{"*.a.test", ".a.test", true},
		{"*.a.test", "x.y.a.test", true},
		{"a.test", "*.x.a.test", false},
		{".x.a.test", "*.a.test", true},
		{"x.a.test", ".a.test", true},
		{".test", "a.b.test", true},
		{"*.test", "*.a.test", true},
		{"ba.test", ".a.test", false},
	}
	for _, tt := range tests {
		a, err := parsePattern(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := parsePattern(tt.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := patternsOverlap(a, b); got != tt.want {
			t.Errorf("patternsOverlap(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := patternsOverlap(b, a); got != tt.want {
			t.Errorf("patternsOverlap(%s, %s) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestMCPWarnings(t *testing.T) {
	e, err := Parse("policy.yaml", []byte(`agents:
  - name: builder
    password: x
mcp:
  servers:
    - name: jira
      url: jira.test
  tools:
    - deny: "jira.delete_*"
    - allow: "jria.*"
      id: typo
    - deny: "*.x"
    - allow: "j*.y"
      agents: [biulder]
  redact:
    - pattern: x
      tools: gone.read
  rate_limits:
    - limit: 1/s
      tools: [jira.a, gone.b]
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range e.Warnings() {
		if strings.Contains(w.Text, "password is written in plain text") {
			continue // passwords_test.go tests these
		}
		got = append(got, w.String())
	}
	want := []string{
		`policy.yaml:13: rule policy.yaml:13 applies to agent biulder, which agents: does not define: no client can be biulder`,
		`policy.yaml:10: tool rule typo ("jria.*") names mcp server jria, which mcp servers does not define: it never applies`,
		`policy.yaml:16: redact policy.yaml:16 ("gone.read") names mcp server gone`,
		`policy.yaml:19: rate limit policy.yaml:19 ("gone.b") names mcp server gone`,
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// A governed server's addresses: those resolve: gives a name an entry
// covers, and the names to look up in DNS for the rest.
func TestMCPServerAddrs(t *testing.T) {
	e := mustLoad(t, `resolve:
  mcp.a.test: [10.0.0.1, "::ffff:10.0.0.2"]
  x.tree.test: [10.0.0.3]
  web.test: [10.0.0.1, 10.0.0.9]
  sub.star.test: [10.0.0.4]
mcp:
  servers:
    - name: a
      url: mcp.a.test/mcp
      ports: [443]
    - name: tree
      url: .tree.test
    - name: star
      url: "*.star.test"
    - name: dns
      url: mcp.dns.test
`, nil)
	for _, tt := range []struct {
		ip   string
		want []string
	}{
		{"10.0.0.1", []string{"mcp.a.test"}}, // web.test is no server's
		{"10.0.0.2", []string{"mcp.a.test"}}, // mapped: unmapped
		{"::ffff:10.0.0.2", []string{"mcp.a.test"}},
		{"10.0.0.3", []string{"x.tree.test"}},
		{"10.0.0.4", []string{"sub.star.test"}},
		{"10.0.0.9", nil},
	} {
		if got := e.MCP().NamesAt(netip.MustParseAddr(tt.ip)); !slices.Equal(got, tt.want) {
			t.Errorf("MCPNamesAt(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if !e.MCP().HasServers() || mustLoad(t, "default: allow\n", nil).MCP().HasServers() {
		t.Errorf("HasMCPServers: want true with servers entries only")
	}
	if got, want := e.MCP().LookupNames(), []string{"mcp.dns.test", "tree.test"}; !slices.Equal(got, want) {
		t.Errorf("MCPLookupNames = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		host string
		port uint16
		want string
	}{{"mcp.a.test", 443, "a"}, {"mcp.a.test", 8443, ""}, {"y.tree.test", 80, "tree"}, {"10.0.0.1", 443, ""}} {
		if got, _ := e.MCP().Host(host(t, tt.host, tt.port)); got != tt.want {
			t.Errorf("MCPHost(%s:%d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}
