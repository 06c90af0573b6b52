package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
		ok   bool
	}{
		{[]string{"Bearer abc"}, "abc", true},
		{[]string{"bearer abc"}, "abc", true},
		{[]string{"BEARER  abc "}, "abc", true},
		{nil, "", false},
		{[]string{"Basic abc"}, "", false},
		{[]string{"Bearer"}, "", false},
		{[]string{"Bearer "}, "", false},
		{[]string{"Bearer a b"}, "", false},
		{[]string{"Bearer a", "Bearer b"}, "", false},
	} {
		got, ok := bearerToken(http.Header{"Authorization": tc.in})
		if got != tc.want || ok != tc.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got := safeCode("invalid_grant\r\n\"x" + strings.Repeat("y", 100)); strings.ContainsAny(got, "\r\n\"") || len(got) != 64 {
		t.Errorf("safeCode kept %q", got)
	}
}

// The exchange against a real STS (zitadel's provider, testenv.StartSTS):
// the agent's token is exchanged once per subject token and kept until
// max_ttl on the exchanges' clock, concurrent requests share one exchange,
// every issued token goes to HeldValue once, and refusals say the STS's
// code, never a token.
func TestExchangeToken(t *testing.T) {
	ca, err := testenv.NewCA("exchange unit root")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf([]string{"sts.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sts, err := testenv.StartSTS(testenv.STSOptions{Host: "sts.test", Cert: &cert, Roots: ca, Dir: t.TempDir(),
		Clients: map[string]string{"agentg": "unit-sts-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sts.Close()
	policy := `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: sts.test
    agents: [agentg]
resolve:
  sts.test: [127.0.0.1]
credentials:
  secrets:
    sts: {insecure_inline: unit-sts-secret}
  bindings:
    - id: obo
      host: api.test
      token_exchange:
        token_url: ` + sts.TokenURL() + `
        client_id: agentg
        client_secret: sts
        audience: api
        max_ttl: 2m
`
	var heldMu sync.Mutex
	var held []string
	srv, err := New(Config{Policy: fixedPolicy{mustParse(t, policy)}, Log: audit.New(io.Discard), UpstreamRoots: ca.Pool(),
		Resolver: noLookups{}, HeldValue: func(binding, v string) {
			heldMu.Lock()
			held = append(held, binding+"="+v)
			heldMu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	var clockMu sync.Mutex
	srv.exchanged.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	eng := srv.cfg.Policy.Engine()
	b := &eng.Credentials().Bindings()[0]
	store := eng.Credentials().Store()
	exchange := func(auth string) (string, *refusal, string) {
		r, _ := http.NewRequest("GET", "https://api.test/x", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		f := srv.events.newFlow("http", "test", "GET")
		ref, why := srv.exchangeToken(f, b, r, store)
		return r.Header.Get("Authorization"), ref, why
	}
	own, err := sts.AgentToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// Ten requests at once with one subject token: one exchange, one
	// token, told to HeldValue once.
	var wg sync.WaitGroup
	got := make([]string, 10)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, ref, why := exchange("Bearer " + own)
			if ref != nil {
				t.Errorf("refused: %d %s", ref.status, why)
			}
			got[i] = h
		}()
	}
	wg.Wait()
	first := got[0]
	for _, h := range got {
		if h != first || h == "Bearer "+own || !strings.HasPrefix(h, "Bearer ") {
			t.Fatalf("Authorization %q, want one exchanged token for all", h)
		}
	}
	if n := sts.Exchanges(); n != 1 {
		t.Fatalf("%d exchanges, want 1", n)
	}
	heldMu.Lock()
	if len(held) != 1 || !strings.HasPrefix(held[0], "exchange.obo.") || !strings.HasSuffix(held[0], "="+strings.TrimPrefix(first, "Bearer ")) {
		t.Fatalf("HeldValue got %d values", len(held))
	}
	heldMu.Unlock()

	// Within max_ttl the cached token; past it a new exchange.
	clockMu.Lock()
	clock = clock.Add(time.Minute)
	clockMu.Unlock()
	if h, _, _ := exchange("Bearer " + own); h != first || sts.Exchanges() != 1 {
		t.Fatalf("within max_ttl: %d exchanges", sts.Exchanges())
	}
	clockMu.Lock()
	clock = clock.Add(2 * time.Minute)
	clockMu.Unlock()
	if h, _, _ := exchange("Bearer " + own); h == first || sts.Exchanges() != 2 {
		t.Fatalf("past max_ttl: %d exchanges, same token %v", sts.Exchanges(), h == first)
	}

	// Another subject token is another exchange.
	other, err := sts.AgentToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ref, _ := exchange("Bearer " + other); ref != nil || sts.Exchanges() != 3 {
		t.Fatalf("another subject: %v, %d exchanges", ref, sts.Exchanges())
	}

	// Refusals.
	for _, tc := range []struct {
		name, auth string
		status     int
		why        string
	}{
		{"no token", "", http.StatusUnauthorized, "no bearer token"},
		{"Basic", "Basic YTpi", http.StatusUnauthorized, "no bearer token"},
		{"a token the STS refuses", "Bearer forged-token", http.StatusBadGateway, "the STS refused (status 400, error invalid_request)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, ref, why := exchange(tc.auth)
			if ref == nil || ref.status != tc.status || !strings.Contains(why, tc.why) {
				t.Fatalf("%v %q, want %d %q", ref, why, tc.status, tc.why)
			}
			if h != tc.auth {
				t.Fatalf("the agent's header was changed on a refusal: %q", h)
			}
			if strings.Contains(ref.text+why, "forged-token") {
				t.Fatalf("a refusal quotes the token: %q %q", ref.text, why)
			}
		})
	}
}
