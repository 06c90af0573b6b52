package rules

import "testing"

// The gateway sends to an mcp servers entry by name, whatever its
// endpoint: server: bindings match it by that name (MatchServer, and the
// leak guard's Binds with CredentialUse.Server), also for an entry that
// only the gateway serves (an endpoint, no url), which Match could not
// find from the destination. Host bindings match as in Match.
func TestCredentialsMatchServer(t *testing.T) {
	e := mustLoad(t, `
hosts:
  - allow: [.example.test]
mcp:
  servers:
    - {name: gw, endpoint: "https://gw.example.test/mcp"}
    - {name: both, url: both.example.test/mcp, endpoint: "https://both.example.test/mcp"}
    - {name: plain, endpoint: "https://plain.example.test/mcp"}
credentials:
  secrets:
    s: {env: T}
    t: {env: U}
  bindings:
    - {id: gw-coder, server: gw, agents: [coder], secret: s, query: k}
    - {id: both, server: both, secret: s, query: k}
    - {id: by-host, host: plain.example.test, path: /mcp, secret: t, query: k}
`, nil)
	c := e.Credentials()
	for _, tt := range []struct {
		agent, server, host, path, want string
	}{
		{"coder", "gw", "gw.example.test", "/mcp", "gw-coder"},
		{"other", "gw", "gw.example.test", "/mcp", ""}, // agents
		{"coder", "", "gw.example.test", "/mcp", ""},   // Match: the entry binds no destination
		{"coder", "plain", "gw.example.test", "/mcp", ""},
		{"any", "both", "both.example.test", "/mcp", "both"},
		{"any", "", "both.example.test", "/mcp", "both"}, // its url binds it on the proxy's doors too
		{"any", "plain", "plain.example.test", "/mcp", "by-host"},
		{"any", "plain", "plain.example.test", "/other", ""},
	} {
		h := host(t, tt.host, 443)
		got := ""
		if b := c.MatchServer(tt.agent, tt.server, h, "https", tt.path); b != nil {
			got = b.ID
		}
		if got != tt.want {
			t.Errorf("MatchServer(%s, %q, %s%s) = %q, want %q", tt.agent, tt.server, tt.host, tt.path, got, tt.want)
		}
		// The leak guard agrees with injection: a secret may go where its
		// binding attaches it.
		secret := "s"
		if tt.want == "by-host" {
			secret = "t"
		}
		q := CredentialUse{Secret: secret, Agent: tt.agent, Host: h, Scheme: "https", Path: tt.path, Server: tt.server}
		if binds := c.Binds(q); binds != (tt.want != "") {
			t.Errorf("Binds(%+v) = %v, want %v", q, binds, tt.want != "")
		}
	}
	h := host(t, "gw.example.test", 443)
	if n := testing.AllocsPerRun(100, func() { c.MatchServer("coder", "gw", h, "https", "/mcp") }); n != 0 {
		t.Errorf("MatchServer allocates %v times", n)
	}
	q := CredentialUse{Secret: "s", Agent: "coder", Host: h, Scheme: "https", Path: "/mcp", Server: "gw"}
	if n := testing.AllocsPerRun(100, func() { c.Binds(q) }); n != 0 {
		t.Errorf("Binds by server allocates %v times", n)
	}
}
