package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agentg/agentg/creds/oauth"
)

// The callback is the one admin path a browser reaches without the token;
// the OAuth endpoints that start or read a connect want it, like every
// other.
func TestOAuthEndpoints(t *testing.T) {
	b, err := oauth.NewBroker(oauth.BrokerConfig{HTTP: http.DefaultClient,
		RedirectURI: func() (string, error) { return "", errors.New("no redirect in this test") }})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{OAuth: b, Policy: newPolicy(t, `hosts:
  - allow: mcp.example.test
credentials:
  bindings:
    - id: jira
      host: mcp.example.test
      oauth: {client_metadata_url: "https://agentg.example/client.json"}
`)})
	for _, c := range []struct {
		method, path, auth string
		status             int
		body               string
	}{
		{"GET", "/v1/oauth", "", http.StatusUnauthorized, "wants the admin token"},
		{"POST", "/v1/oauth/connect", "", http.StatusUnauthorized, "wants the admin token"},
		{"GET", "/v1/oauth/connect/abc", "", http.StatusUnauthorized, "wants the admin token"},
		{"GET", "/v1/oauth", "Bearer " + testToken, http.StatusOK, `"binding": "jira"`},
		{"GET", "/v1/oauth/connect/abc", "Bearer " + testToken, http.StatusNotFound, "no connect attempt"},
		// No token needed, and a state agentg never issued is refused.
		{"GET", CallbackPath + "?state=forged&code=c", "", http.StatusBadRequest, "not one agentg is waiting for"},
		{"GET", CallbackPath + "?code=c", "", http.StatusBadRequest, "not one agentg is waiting for"},
		{"POST", CallbackPath, "", http.StatusMethodNotAllowed, ""},
	} {
		status, h, body := ts.request(t, c.method, c.path, c.auth)
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s %s (auth %v) = %d %q, want %d with %q", c.method, c.path, c.auth != "", status, body, c.status, c.body)
		}
		if strings.HasPrefix(c.path, CallbackPath) && h.Get("Content-Security-Policy") != "default-src 'none'" {
			t.Errorf("%s %s: CSP %q", c.method, c.path, h.Get("Content-Security-Policy"))
		}
	}
	// A connect that cannot begin says why, through the client as the CLI
	// sees it.
	_, err = ts.client.OAuthConnect(context.Background(), "nope")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("connect an unknown binding: %v", err)
	}
	_, err = ts.client.OAuthConnect(context.Background(), "jira")
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "no redirect in this test") {
		t.Fatalf("connect without a redirect URI: %v", err)
	}
	items, err := ts.client.OAuthBindings(context.Background())
	if err != nil || len(items) != 1 || items[0].Binding != "jira" || items[0].Grant != "authorization_code" || items[0].Connected {
		t.Fatalf("OAuthBindings = %+v, %v", items, err)
	}
}

func TestCallbackURL(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8901}, "http://127.0.0.1:8901/oauth/callback"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8901}, "http://127.0.0.1:8901/oauth/callback"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8901}, "http://[::1]:8901/oauth/callback"},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 8901}, ""},
		{&net.UnixAddr{Name: "/run/agentg.sock", Net: "unix"}, ""},
	} {
		got, err := CallbackURL(c.addr)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("CallbackURL(%v) = %q, %v; want %q", c.addr, got, err, c.want)
		}
	}
}
