package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
)

// Send, over real sockets: a door of agentg's own (the gateway) sends an
// agent's request with the credentials that agent's request through the
// proxy would get, decided as that agent; a token_exchange binding
// exchanges the token the door proved the agent with, which itself never
// goes upstream; what is refused reaches nothing (shown by a later
// request the upstream does see) and says why.
func TestSend(t *testing.T) {
	ca, err := testenv.NewCA("send unit root")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf([]string{"sts.test", "api.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sts, err := testenv.StartSTS(testenv.STSOptions{Host: "sts.test", Cert: &cert, Roots: ca, Dir: t.TempDir(),
		Clients: map[string]string{"agentg": "unit-sts-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sts.Close()
	type seen struct{ path, auth, key string }
	var mu sync.Mutex
	var got []seen
	up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Quiet: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("X-Key")})
		mu.Unlock()
		io.WriteString(w, "up "+r.URL.Path)
	})})
	defer up.Close()
	const headerKey = "unit-header-key-4c1d9e"
	policy := `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: api.test
  - allow: sts.test
    agents: [agentg]
http:
  - deny: "GET api.test/forbidden"
    id: no-forbidden
resolve:
  api.test: [127.0.0.1]
  sts.test: [127.0.0.1]
credentials:
  secrets:
    sts: {insecure_inline: unit-sts-secret}
    key: {insecure_inline: ` + headerKey + `}
  bindings:
    - id: obo
      host: api.test
      path: /obo/**
      token_exchange:
        token_url: ` + sts.TokenURL() + `
        client_id: agentg
        client_secret: sts
        audience: api
    - id: hdr
      host: api.test
      path: /hdr/**
      agents: [coder]
      secret: key
      header: {name: X-Key, value: "{{secret}}"}
`
	log := &syncBuffer{}
	srv, err := New(Config{Policy: fixedPolicy{mustParse(t, policy)}, Log: audit.New(log), UpstreamRoots: ca.Pool(), Resolver: noLookups{}})
	if err != nil {
		t.Fatal(err)
	}
	own, err := sts.AgentToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	send := func(path string, by Sender) (*httptest.ResponseRecorder, error) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, "https://api.test:"+up.Port+path, nil)
		w := httptest.NewRecorder()
		by.Door = "gateway"
		return w, srv.Send(w, r, by)
	}
	last := func() seen {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			return seen{}
		}
		return got[len(got)-1]
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	// The binding is the agent's: coder's request gets the header, other's not.
	if w, err := send("/hdr/x", Sender{Agent: "coder"}); err != nil || w.Code != 200 || last().key != headerKey {
		t.Fatalf("coder: %v %d, upstream saw key %v", err, w.Code, last().key == headerKey)
	}
	if w, err := send("/hdr/y", Sender{Agent: "other"}); err != nil || w.Code != 200 || last().path != "/hdr/y" || last().key != "" {
		t.Fatalf("other: %v %d, upstream saw %s with a key: %v", err, w.Code, last().path, last().key != "")
	}
	// The door's proven token is exchanged; it never goes upstream itself.
	if w, err := send("/obo/x", Sender{Agent: "coder", Subject: own}); err != nil || w.Code != 200 ||
		!strings.HasPrefix(last().auth, "Bearer ") || last().auth == "Bearer "+own || sts.Exchanges() != 1 {
		t.Fatalf("exchange: %v %d, %d exchanges, upstream got the agent's own token: %v", err, w.Code, sts.Exchanges(), last().auth == "Bearer "+own)
	}

	// Refusals: nothing reaches the upstream, and Send says why.
	n := count()
	for _, tc := range []struct {
		name, path string
		by         Sender
		status     int
		rule       string
	}{
		{"no subject to exchange", "/obo/y", Sender{Agent: "coder"}, http.StatusUnauthorized, ""},
		{"an HTTP rule", "/forbidden", Sender{Agent: "coder"}, http.StatusForbidden, "no-forbidden"},
		{"no agent", "/hdr/z", Sender{}, http.StatusForbidden, ""},
	} {
		w, err := send(tc.path, tc.by)
		var ref *RefusedError
		if !errors.As(err, &ref) || ref.Status != tc.status || ref.Rule != tc.rule {
			t.Errorf("%s: %v, want a refusal %d by %q", tc.name, err, tc.status, tc.rule)
		}
		if w.Code != tc.status {
			t.Errorf("%s: answered %d", tc.name, w.Code)
		}
	}
	if _, err := send("/marker", Sender{Agent: "coder"}); err != nil || last().path != "/marker" || count() != n+1 {
		t.Fatalf("marker: %v; the upstream saw %d requests since the refusals, want only the marker", err, count()-n)
	}

	// One event per request, door gateway, the binding named; no value.
	log.mu.Lock()
	text := log.b.String()
	log.mu.Unlock()
	for _, want := range []string{`"binding":"hdr"`, `"credential":"key"`, `"binding":"obo"`, `"door":"gateway"`, `"rule":"no-forbidden"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the events have no %s", want)
		}
	}
	for _, v := range []string{headerKey, own, "unit-sts-secret"} {
		if strings.Contains(text, v) {
			t.Errorf("an event holds a secret value")
		}
	}
}
