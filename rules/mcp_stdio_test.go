package rules

import (
	"slices"
	"testing"
)

func TestStdioServers(t *testing.T) {
	e := mustLoad(t, `credentials:
  secrets:
    tok: {env: SOME_TOKEN}
mcp:
  servers:
    - name: web
      url: web.test/mcp
    - name: files
      command: [npx, -y, server-files, /srv]
      dir: work
      env:
        LANG: C.UTF-8
        API_TOKEN: {secret: tok}
      egress: [api.files.test, "*.cdn.test"]
    - name: open
      command: [open-server]
    - name: closed
      command: [closed-server]
      egress: []
`, nil)
	ss := e.MCP().StdioServers()
	if len(ss) != 3 || ss[0].Name != "files" || ss[1].Name != "open" || ss[2].Name != "closed" {
		t.Fatalf("stdio servers: %+v", ss)
	}
	f := ss[0]
	if !slices.Equal(f.Command, []string{"npx", "-y", "server-files", "/srv"}) || f.Dir == "work" || f.Dir == "" {
		t.Fatalf("files: command %q dir %q (want the dir made absolute)", f.Command, f.Dir)
	}
	if len(f.Env) != 2 || f.Env[0] != (EnvVar{Name: "API_TOKEN", Secret: "tok"}) || f.Env[1] != (EnvVar{Name: "LANG", Value: "C.UTF-8"}) {
		t.Fatalf("files env: %+v", f.Env)
	}
	if _, ok := e.MCP().StdioServer("web"); ok {
		t.Fatal("a url server is listed as a command server")
	}
	tests := []struct {
		agent, host string
		restricted  bool
		allow       bool
	}{
		{"server:files", "api.files.test", true, true},
		{"server:files", "x.cdn.test", true, true},
		{"server:files", "cdn.test", true, false}, // *. covers subdomains only
		{"server:files", "evil.test", true, false},
		{"server:files", "127.0.0.1", true, false}, // a list names hosts
		{"server:open", "evil.test", false, false}, // no list: the host rules decide
		{"server:closed", "api.files.test", true, false},
		{"files", "evil.test", false, false}, // not a server's identity
		{"server:nosuch", "evil.test", false, false},
	}
	for _, tt := range tests {
		d, restricted := e.Egress(tt.agent, host(t, tt.host, 443))
		if restricted != tt.restricted || restricted && d.Allowed() != tt.allow {
			t.Errorf("Egress(%s, %s) = %+v, %v; want restricted %v allow %v", tt.agent, tt.host, d, restricted, tt.restricted, tt.allow)
		}
		if restricted && !d.Allowed() && d.Rule != "mcp:egress "+tt.agent[len("server:"):] {
			t.Errorf("Egress(%s, %s) rule %q", tt.agent, tt.host, d.Rule)
		}
	}
}

func TestStdioServerErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"both", "mcp:\n  servers:\n    - name: a\n      url: a.test\n      command: [x]\n", ":3: mcp server a has a command and a url or endpoint"},
		{"neither", "mcp:\n  servers:\n    - name: a\n", ":3: mcp server entry needs a name and a url (or an endpoint, for the gateway, or a command)"},
		{"empty command", "mcp:\n  servers:\n    - name: a\n      command: []\n", ":4: command must be a non-empty list"},
		{"command scalar", "mcp:\n  servers:\n    - name: a\n      command: x\n", ":4: command must be a non-empty list"},
		{"env on url", "mcp:\n  servers:\n    - name: a\n      url: a.test\n      env: {A: b}\n", ":3: mcp server a: dir, env and egress apply to a server agentg starts"},
		{"proxy env", "mcp:\n  servers:\n    - name: a\n      command: [x]\n      env: {HTTPS_PROXY: x}\n", ":5: env: HTTPS_PROXY is agentg's to set"},
		{"bad env name", "mcp:\n  servers:\n    - name: a\n      command: [x]\n      env: {1A: x}\n", ":5: bad environment variable name"},
		{"unknown secret", "mcp:\n  servers:\n    - name: a\n      command: [x]\n      env: {A: {secret: nope}}\n", ":5: env A: no secret \"nope\""},
		{"bad env value", "mcp:\n  servers:\n    - name: a\n      command: [x]\n      env: {A: {value: x}}\n", ":5: unknown env value key"},
		{"bad egress", "mcp:\n  servers:\n    - name: a\n      command: [x]\n      egress: [\"a*b.test\"]\n", ":5: egress: bad host pattern"},
		{"egress ip", "mcp:\n  servers:\n    - name: a\n      command: [x]\n      egress: [10.0.0.1]\n", ":5: egress: IP literal"},
		{"ports on command", "mcp:\n  servers:\n    - name: a\n      command: [x]\n      ports: [443]\n", ":3: mcp server a: ports and websocket apply to a server at a url"},
	})
}

func TestServerIdentityNotClaimable(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"agents entry", "agents:\n  - name: \"server:files\"\n    cidrs: [127.0.0.1/32]\n", `:2: agent name "server:files": names starting with`},
		{"agents entry dot", "agents:\n  - name: server.files\n", `:2: agent name "server.files": names starting with`},
	})
	e := mustLoad(t, "free_agent_names: true\n", nil)
	for _, u := range []string{"server:files", "server.files"} {
		if a, err := e.AgentAt(Claim{User: u, Src: ip("127.0.0.1")}); err == nil {
			t.Fatalf("a client claimed a server's identity by name %s: %q", u, a)
		}
	}
}
