package rules

import (
	"net/url"
	"testing"
	"time"

	"github.com/agentg/agentg/addr"
)

func TestGatewayServers(t *testing.T) {
	e := mustLoad(t, `mcp:
  servers:
    - name: jira
      url: mcp.atlassian.test/v1/**
    - name: alpha
      endpoint: https://alpha.test/mcp
    - name: beta
      url: beta.test/mcp
      endpoint: http://127.0.0.1:8080/mcp
      prefix: b
      timeout: 750ms
    - name: gamma
      endpoint: https://gamma.test:8443/x/mcp
      prefix: ""
    - name: files
      command: [srv, --stdio]
      timeout: 2s
`, nil)
	got := e.MCP().GatewayServers()
	want := []struct {
		name, endpoint, prefix, tool string
		timeout                      time.Duration
	}{
		{"alpha", "https://alpha.test/mcp", "alpha", "alpha.echo", DefaultGatewayTimeout},
		{"beta", "http://127.0.0.1:8080/mcp", "b", "b.echo", 750 * time.Millisecond},
		{"gamma", "https://gamma.test:8443/x/mcp", "", "echo", DefaultGatewayTimeout},
		{"files", "", "files", "files.echo", 2 * time.Second}, // a command server, over stdio
	}
	if len(got) != len(want) {
		t.Fatalf("GatewayServers = %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Endpoint != w.endpoint || g.Prefix != w.prefix || g.Timeout != w.timeout || g.Serving.Name("echo") != w.tool {
			t.Errorf("server %d = %+v, want %+v", i, g, w)
		}
	}
	// An entry with an endpoint and no url binds nothing on the proxy.
	if name, ok := e.MCP().Server(host(t, "alpha.test", 443), "/mcp"); ok {
		t.Errorf("alpha.test bound to %s", name)
	}
	if name, _ := e.MCP().Server(host(t, "beta.test", 443), "/mcp"); name != "beta" {
		t.Errorf("beta.test bound to %q", name)
	}
	if len(got[3].Command) != 2 {
		t.Errorf("the command server's binding has no command: %+v", got[3])
	}
	if len(e.MCP().Servers()) != 5 {
		t.Errorf("Servers() = %v", e.MCP().Servers())
	}
}

func TestGatewayServerErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"no url nor endpoint", "mcp:\n  servers:\n    - name: a\n", ":3: mcp server entry needs a name and a url (or an endpoint"},
		{"endpoint scheme", "mcp:\n  servers:\n    - name: a\n      endpoint: ftp://x.test/mcp\n", ":4: mcp server endpoint \"ftp://x.test/mcp\": want an http:// or https:// URL"},
		{"endpoint relative", "mcp:\n  servers:\n    - name: a\n      endpoint: /mcp\n", ":4: mcp server endpoint \"/mcp\": want an http"},
		{"endpoint user", "mcp:\n  servers:\n    - name: a\n      endpoint: https://u:p@x.test/mcp\n", ":4: mcp server endpoint"},
		{"endpoint fragment", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test/mcp#f\n", ":4: mcp server endpoint \"https://x.test/mcp#f\": no fragment"},
		{"endpoint port", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test:99999/mcp\n", ":4: "},
		{"prefix dot", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test/mcp\n      prefix: a.b\n", ":5: bad prefix \"a.b\""},
		{"prefix null", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test/mcp\n      prefix:\n", ":5: bad prefix: write a name"},
		{"timeout", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test/mcp\n      timeout: 1h\n", ":5: bad duration \"1h\""},
		{"same prefix", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test/mcp\n    - name: b\n      endpoint: https://y.test/mcp\n      prefix: a\n",
			":7: mcp servers b and a (line 3) have the same prefix \"a\""},
		{"two without prefix", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test/mcp\n      prefix: \"\"\n    - name: b\n      endpoint: https://y.test/mcp\n      prefix: \"\"\n",
			":8: mcp servers b and a (line 3) both have no prefix"},
		// A command server is in the catalogue too: its names collide
		// like any served entry's.
		{"command and endpoint, same prefix", "mcp:\n  servers:\n    - name: a\n      endpoint: https://x.test/mcp\n    - name: b\n      command: [srv]\n      prefix: a\n",
			":7: mcp servers b and a (line 3) have the same prefix \"a\""},
		{"command named as a prefix", "mcp:\n  servers:\n    - name: x\n      endpoint: https://x.test/mcp\n      prefix: b\n    - name: b\n      command: [srv]\n",
			":7: mcp servers b and x (line 3) have the same prefix \"b\""},
		{"two commands without prefix", "mcp:\n  servers:\n    - name: a\n      command: [srv]\n      prefix: \"\"\n    - name: b\n      command: [srv2]\n      prefix: \"\"\n",
			":8: mcp servers b and a (line 3) both have no prefix"},
	})
}

// FuzzGatewayEndpoint: what the policy accepts as an endpoint is what
// the gateway can dial: an http(s) URL whose authority addr reads.
func FuzzGatewayEndpoint(f *testing.F) {
	for _, s := range []string{"https://a.test/mcp", "http://127.0.0.1:8080/mcp", "http://[::1]:1/x", "https://a.test:0/", "http://a b/", "https://%zz/", "http://u@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkEndpoint(s) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
			t.Fatalf("accepted %q: %v %+v", s, err, u)
		}
		if _, err := addr.ParseAuthority(u.Host, defaultPort(u.Scheme)); err != nil {
			t.Fatalf("accepted %q whose authority does not parse: %v", s, err)
		}
	})
}
