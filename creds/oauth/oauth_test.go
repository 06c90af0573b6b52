package oauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestDiscoveryURLs(t *testing.T) {
	for _, c := range []struct {
		server, metadata string
		want             []string
	}{
		{"https://mcp.example/public/mcp", "", []string{"https://mcp.example/.well-known/oauth-protected-resource/public/mcp", "https://mcp.example/.well-known/oauth-protected-resource"}},
		{"https://mcp.example/", "", []string{"https://mcp.example/.well-known/oauth-protected-resource"}},
		{"https://mcp.example/mcp", "https://mcp.example/custom.json", []string{"https://mcp.example/custom.json"}},
	} {
		u, _ := url.Parse(c.server)
		if got := prmURLs(u, Challenge{ResourceMetadata: c.metadata}); !slices.Equal(got, c.want) {
			t.Errorf("prmURLs(%s, %q) = %v, want %v", c.server, c.metadata, got, c.want)
		}
	}
	for _, c := range []struct {
		issuer string
		want   []string
	}{
		{"https://auth.example", []string{"https://auth.example/.well-known/oauth-authorization-server", "https://auth.example/.well-known/openid-configuration"}},
		{"https://auth.example/tenant1", []string{"https://auth.example/.well-known/oauth-authorization-server/tenant1",
			"https://auth.example/.well-known/openid-configuration/tenant1", "https://auth.example/tenant1/.well-known/openid-configuration"}},
	} {
		u, _ := url.Parse(c.issuer)
		if got := asMetadataURLs(u); !slices.Equal(got, c.want) {
			t.Errorf("asMetadataURLs(%s) = %v, want %v", c.issuer, got, c.want)
		}
	}
}

func TestResourceCovers(t *testing.T) {
	for _, c := range []struct {
		resource, server string
		want             bool
	}{
		{"https://mcp.example/mcp", "https://mcp.example/mcp", true},
		{"https://mcp.example", "https://mcp.example/mcp", true},
		{"https://MCP.example/", "https://mcp.example/mcp", true},
		{"https://mcp.example/mc", "https://mcp.example/mcp", false},
		{"https://evil.example.com/mcp", "http://localhost:3000/mcp", false},
		{"http://mcp.example/mcp", "https://mcp.example/mcp", false},
		{"https://mcp.example:8443/mcp", "https://mcp.example/mcp", false},
		{"https://mcp.example/mcp#x", "https://mcp.example/mcp", false},
		{"https://mcp.example/other", "https://mcp.example/mcp", false},
	} {
		u, _ := url.Parse(c.server)
		if got := resourceCovers(c.resource, u); got != c.want {
			t.Errorf("resourceCovers(%q, %s) = %v, want %v", c.resource, c.server, got, c.want)
		}
	}
}

func TestChooseAuth(t *testing.T) {
	for _, c := range []struct {
		want              string
		supported         []string
		hasSecret, hasKey bool
		got               string
		fails             bool
	}{
		{"", []string{"client_secret_basic"}, true, false, AuthBasic, false},
		{"auto", []string{"client_secret_post"}, true, false, AuthPost, false},
		{"", []string{"none"}, false, false, AuthNone, false},
		{"", nil, true, false, AuthBasic, false},
		{"", nil, false, false, AuthNone, false},
		{"", []string{"private_key_jwt"}, false, true, AuthJWT, false},
		{"", []string{"none"}, true, false, "", true},
		{AuthPost, []string{"client_secret_basic"}, true, false, "", true},
		{AuthJWT, nil, false, true, AuthJWT, false},
	} {
		got, err := chooseAuth(c.want, c.supported, c.hasSecret, c.hasKey)
		if (err != nil) != c.fails || got != c.got {
			t.Errorf("chooseAuth(%q, %v, %v, %v) = %q, %v; want %q, fails %v", c.want, c.supported, c.hasSecret, c.hasKey, got, err, c.got, c.fails)
		}
	}
}

func TestParseChallenge(t *testing.T) {
	for _, c := range []struct {
		header string
		want   Challenge
		fails  bool
	}{
		{`Bearer resource_metadata="https://m.example/.well-known/oauth-protected-resource/mcp", scope="a b"`,
			Challenge{ResourceMetadata: "https://m.example/.well-known/oauth-protected-resource/mcp", Scope: []string{"a", "b"}}, false},
		{`Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="x"`,
			Challenge{ResourceMetadata: "x", Scope: []string{"mcp:write"}, Error: "insufficient_scope"}, false},
		{`Basic realm="x"`, Challenge{}, false},
		{``, Challenge{}, false},
		{`Bearer scope="unterminated`, Challenge{}, true},
	} {
		h := http.Header{}
		if c.header != "" {
			h.Set("WWW-Authenticate", c.header)
		}
		got, err := ParseChallenge(h)
		if (err != nil) != c.fails || got.ResourceMetadata != c.want.ResourceMetadata || got.Error != c.want.Error || !slices.Equal(got.Scope, c.want.Scope) {
			t.Errorf("ParseChallenge(%q) = %+v, %v; want %+v, fails %v", c.header, got, err, c.want, c.fails)
		}
	}
}

func TestSelectScopes(t *testing.T) {
	for _, c := range []struct {
		challenge, supported, before, policy, want []string
	}{
		{[]string{"mcp:basic"}, []string{"mcp:profile"}, nil, nil, []string{"mcp:basic"}},
		{nil, []string{"a", "b"}, nil, nil, []string{"a", "b"}},
		{nil, nil, nil, nil, nil},
		{[]string{"mcp:write"}, nil, []string{"mcp:basic"}, nil, []string{"mcp:basic", "mcp:write"}},
		{nil, nil, nil, []string{"x"}, []string{"x"}},
	} {
		if got := selectScopes(c.challenge, c.supported, c.before, c.policy); !slices.Equal(got, c.want) {
			t.Errorf("selectScopes(%v, %v, %v, %v) = %v, want %v", c.challenge, c.supported, c.before, c.policy, got, c.want)
		}
	}
}

func TestCheckEndpoint(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://auth.example/token": true, "http://localhost:3000/token": true, "http://127.0.0.1/t": true,
		"http://auth.example/token": false, "javascript:alert(1)": false, "/token": false, "ftp://x/y": false,
	} {
		if err := checkEndpoint(raw); (err == nil) != ok {
			t.Errorf("checkEndpoint(%q) = %v, want ok %v", raw, err, ok)
		}
	}
}

func TestParsePrivateKeyNeverQuotesTheKey(t *testing.T) {
	const junk = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
	_, err := parsePrivateKey(junk)
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("parsePrivateKey(junk) = %v", err)
	}
}

func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{`Bearer resource_metadata="x", scope="a b"`, `Bearer error="insufficient_scope"`, `Basic realm=x, Bearer scope=y`, `Bearer "`, `Bearer a=b,,c=d`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"Www-Authenticate": {s}}
		ch, err := ParseChallenge(h)
		if err != nil {
			return
		}
		for _, sc := range ch.Scope {
			if sc == "" || strings.ContainsAny(sc, " \t") {
				t.Fatalf("scope %q from %q", sc, s)
			}
		}
	})
}

// The private key is a secret: whatever it holds, reading it never
// panics and no error quotes it.
func FuzzParsePrivateKey(f *testing.F) {
	for _, s := range []string{"", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----MHcCAQEE-----END EC PRIVATE KEY-----", "bm90IGEga2V5", "-----BEGIN "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parsePrivateKey(s)
		if err == nil {
			if _, err := signingAlg(k); err != nil && k == nil {
				t.Fatal("a nil key without an error")
			}
			return
		}
		if len(s) >= 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("the error quotes the key: %v", err)
		}
	})
}
