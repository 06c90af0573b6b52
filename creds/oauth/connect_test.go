package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The callback's state is single use and expires, and the response's iss
// is checked before anything else of it (RFC 9207 as 2026-07-28 says).
func TestCallbackStateAndIss(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b, err := NewBroker(BrokerConfig{HTTP: http.DefaultClient, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	bd := Binding{ID: "x", Config: &Config{Grant: AuthorizationCode}}
	add := func(state string, issSupported bool, expires time.Time) {
		b.mu.Lock()
		b.pending[state] = &pending{connectID: state, binding: bd, ep: &endpoint{issuer: "https://as.example"}, issSupported: issSupported, expires: expires}
		b.connects[state] = &Connect{ID: state, State: "pending", Expires: expires}
		b.mu.Unlock()
	}
	ctx := context.Background()
	for _, c := range []struct {
		name         string
		issSupported bool
		q            url.Values
		want         string
	}{
		{"missing iss when advertised", true, url.Values{"code": {"c"}}, "says it sends iss"},
		{"wrong iss", false, url.Values{"code": {"c"}, "iss": {"https://evil.example"}}, "is not the issuer"},
		{"normalised iss", true, url.Values{"code": {"c"}, "iss": {"https://as.example/"}}, "is not the issuer"},
		{"two iss", true, url.Values{"code": {"c"}, "iss": {"https://as.example", "https://as.example"}}, "is not the issuer"},
		{"error before iss", true, url.Values{"error": {"access_denied"}, "iss": {"https://evil.example"}}, "is not the issuer"},
		{"error", true, url.Values{"error": {"access_denied"}, "iss": {"https://as.example"}}, "refused: access_denied"},
		{"no code", false, url.Values{}, "has no code"},
	} {
		st := "state-" + strings.ReplaceAll(c.name, " ", "-")
		add(st, c.issSupported, now.Add(time.Minute))
		c.q.Set("state", st)
		id, err := b.Callback(ctx, c.q)
		if id != "x" || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Callback = %q, %v; want an error with %q", c.name, id, err, c.want)
		}
		if got, _ := b.ConnectStatus(st); got.State != "failed" {
			t.Errorf("%s: the attempt is %q, want failed", c.name, got.State)
		}
		// Spent: the same state again is unknown.
		if _, err := b.Callback(ctx, c.q); !errors.Is(err, ErrState) {
			t.Errorf("%s: the state was accepted twice: %v", c.name, err)
		}
	}
	if _, err := b.Callback(ctx, url.Values{"state": {"never-issued"}, "code": {"c"}}); !errors.Is(err, ErrState) {
		t.Errorf("an unknown state: %v", err)
	}
	if _, err := b.Callback(ctx, url.Values{"code": {"c"}}); !errors.Is(err, ErrState) {
		t.Errorf("no state: %v", err)
	}
	add("old", false, now.Add(-time.Second))
	if _, err := b.Callback(ctx, url.Values{"state": {"old"}, "code": {"c"}}); !errors.Is(err, ErrState) {
		t.Errorf("an expired state: %v", err)
	}
}

// A token is attached only to the resource it was issued for.
func TestTokenOnlyToItsResource(t *testing.T) {
	b, err := NewBroker(BrokerConfig{HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	bd := Binding{ID: "x", Config: &Config{Grant: AuthorizationCode}}
	s := b.server(bd)
	s.tok = &oauth2.Token{AccessToken: "the-access-token", Expiry: time.Now().Add(time.Hour)}
	s.ep = &endpoint{resource: "https://a.example/mcp"}
	for raw, want := range map[string]string{
		"https://a.example/mcp":      "the-access-token",
		"https://a.example/mcp/sub":  "the-access-token",
		"https://b.example/mcp":      "",
		"https://a.example/other":    "",
		"http://a.example/mcp":       "",
		"https://a.example:8443/mcp": "",
	} {
		u, _ := url.Parse(raw)
		got, err := b.Token(context.Background(), bd, u)
		if err != nil || got != want {
			t.Errorf("Token(%s) = %q, %v; want %q", raw, got, err, want)
		}
	}
	// Another server's 401 is not answered with this resource's token.
	u, _ := url.Parse("https://b.example/mcp")
	if got, _ := b.Token(context.Background(), bd, u); got != "" {
		t.Fatalf("Token(b) = %q", got)
	}
	out := b.Challenged(context.Background(), bd, http.StatusUnauthorized, http.Header{}, "", false)
	if out.Retry || !out.Connect {
		t.Fatalf("Challenged for another resource = %+v, want a connect and no retry", out)
	}
}
