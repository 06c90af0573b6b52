package test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Token exchange (RFC 8693) against a real STS: zitadel's OpenID provider
// (github.com/zitadel/oidc/v3/pkg/op with its example storage) on loopback
// TLS. The agent holds only its own token from the identity provider;
// agentg exchanges it for a token issued for the upstream's audience, and
// the upstream, which accepts only tokens the provider says (by
// introspection) are active, meant for it and issued to agentg, sees the
// exchanged token with the agent's subject and never the agent's own.

const (
	xchClientSecret = "agentg-sts-secret-8f27d4" // agentg's client secret at the STS
	xchUpSecret     = "upstream-rs-secret-31b6c0"
)

func TestCredTokenExchange(t *testing.T) {
	ca, err := testenv.NewCA("token exchange root")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf([]string{"sts.xch.test", "api.xch.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sts, err := testenv.StartSTS(testenv.STSOptions{Host: "sts.xch.test", Cert: &cert, Roots: ca, Dir: dir,
		Clients: map[string]string{"agentg": xchClientSecret, "upstream-api": xchUpSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer sts.Close()
	issuer := sts.Issuer

	// The upstream: only a token the provider says (by introspection) is
	// active, meant for upstream-api and issued to agentg.
	var mu sync.Mutex
	var seenTokens []string
	var seenSubjects []string
	intro, err := sts.Introspector(context.Background(), "upstream-api", xchUpSecret)
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		seenTokens = append(seenTokens, tok)
		mu.Unlock()
		if r.URL.Path == "/marker" {
			io.WriteString(w, "marker")
			return
		}
		active, sub, client, err := intro.Introspect(r.Context(), tok)
		if err != nil || !active || client != "agentg" {
			http.Error(w, "token not accepted", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		seenSubjects = append(seenSubjects, sub)
		mu.Unlock()
		io.WriteString(w, "hello "+sub)
	})})
	defer up.Close()

	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	policy := `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: api.xch.test
  - allow: [sts.xch.test]
    agents: [agentg]
resolve:
  api.xch.test: [127.0.0.1]
  sts.xch.test: [127.0.0.1]
  sts-denied.xch.test: [127.0.0.1]
intercept: [api.xch.test]
credentials:
  secrets:
    sts: {env: AGENTG_TEST_XCH_SECRET}
  bindings:
    - id: api-obo
      host: api.xch.test
      path: /data/**
      token_exchange:
        token_url: ` + issuer + `/oauth/token
        client_id: agentg
        client_secret: sts
        audience: upstream-api
        scopes: [openid]
    - id: sts-denied
      host: api.xch.test
      path: /denied/**
      token_exchange:
        token_url: https://sts-denied.xch.test:` + sts.Port + `/oauth/token
        client_id: agentg
        client_secret: sts
`
	stderr := &syncBuffer{}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: policy,
		Stderr: stderr, Env: append(os.Environ(), "AGENTG_TEST_XCH_SECRET="+xchClientSecret),
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	agent := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL()),
		TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://api.xch.test:"+up.Port+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := agent.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	// The agent's own token, from its identity provider.
	ownTok, err := sts.AgentToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitExchange := func(what string, match func(e map[string]any) bool) map[string]any {
		t.Helper()
		return waitEventOf(t, a, what, match)
	}

	// 1. The agent sends its own token; the upstream gets one the STS
	// issued for it, with the agent's subject, and never the agent's.
	if st, body := do("/data/x", "Bearer "+ownTok); st != 200 || body != "hello sid1" {
		t.Fatalf("GET /data/x: %d %q", st, body)
	}
	mu.Lock()
	if len(seenTokens) != 1 || seenTokens[0] == ownTok || seenTokens[0] == "" {
		t.Fatalf("the upstream saw %d tokens, the agent's own among them: %v", len(seenTokens), seenTokens[0] == ownTok)
	}
	exchangedTok := seenTokens[0]
	mu.Unlock()
	reqEv := waitExchange("the exchanged request's event", func(e map[string]any) bool {
		return e["path"] == "/data/x" && e["binding"] == "api-obo" && e["credential"] == "sts" && e["status"] == float64(200)
	})
	// The STS call is agentg's own, decided as agentg, its parent the
	// agent's request.
	waitExchange("the STS call's event", func(e map[string]any) bool {
		return e["door"] == "agentg" && e["agent"] == "agentg" && e["host"] == "sts.xch.test" && e["path"] == "/oauth/token" &&
			e["decision"] == "allow" && e["status"] == float64(200) && e["parent"] == reqEv["id"]
	})

	// 2. The same subject token again: the cached token, no second
	// exchange; the upstream sees the same exchanged token.
	if st, body := do("/data/y", "Bearer "+ownTok); st != 200 || body != "hello sid1" {
		t.Fatalf("GET /data/y: %d %q", st, body)
	}
	if n := sts.Exchanges(); n != 1 {
		t.Fatalf("%d exchanges at the STS, want 1 (the second request takes the cached token)", n)
	}

	// 3. No subject token: 401 from agentg, with an event; the upstream
	// never sees the request (the marker after it is the next it sees).
	mu.Lock()
	before := len(seenTokens)
	mu.Unlock()
	if st, body := do("/data/none", ""); st != 401 || !strings.Contains(body, "api-obo") {
		t.Fatalf("GET without a token: %d %q, want 401 naming the binding", st, body)
	}
	waitExchange("the missing token's event", func(e map[string]any) bool {
		err, _ := e["error"].(string)
		return e["path"] == "/data/none" && e["status"] == float64(401) && strings.Contains(err, "no bearer token")
	})

	// 4. A token the STS does not accept: 502, the event naming the
	// STS's error code.
	if st, body := do("/data/bad", "Bearer not-a-token-of-the-idp"); st != 502 || !strings.Contains(body, "invalid_request") {
		t.Fatalf("GET with a bad token: %d %q, want 502 with the STS's code", st, body)
	}
	waitExchange("the STS refusal's event", func(e map[string]any) bool {
		err, _ := e["error"].(string)
		return e["path"] == "/data/bad" && e["status"] == float64(502) && strings.Contains(err, "error invalid_request")
	})

	// 5. An STS the policy does not let agentg reach: refused before
	// any byte goes to it, 502 naming the rule.
	if st, body := do("/denied/x", "Bearer "+ownTok); st != 502 || !strings.Contains(body, "rule default") {
		t.Fatalf("GET with a denied STS: %d %q", st, body)
	}
	waitExchange("the denied STS call's event", func(e map[string]any) bool {
		return e["door"] == "agentg" && e["host"] == "sts-denied.xch.test" && e["decision"] == "deny" && e["rule"] == "default"
	})
	if n := sts.Exchanges(); n != 2 { // the bad token's; never the denied STS's
		t.Fatalf("%d exchanges at the STS, want 2", n)
	}
	if st, _ := do("/marker", ""); st != 200 {
		t.Fatalf("marker: %d", st)
	}
	mu.Lock()
	after := append([]string(nil), seenTokens[before:]...)
	all := append([]string(nil), seenTokens...)
	subjects := append([]string(nil), seenSubjects...)
	mu.Unlock()
	if len(after) != 1 || after[0] != "" {
		t.Fatalf("after the refused requests the upstream saw %d requests, want the marker only", len(after))
	}
	for _, tok := range all {
		if tok == ownTok {
			t.Fatal("the upstream saw the agent's own token")
		}
	}
	if strings.Join(subjects, ",") != "sid1,sid1" {
		t.Fatalf("subjects the upstream accepted: %v", subjects)
	}

	// Nothing agentg wrote holds a token or a secret.
	a.Stop(2 * time.Second)
	logText, err := os.ReadFile(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	out := string(logText) + stderr.String() + a.Stderr()
	for name, v := range map[string]string{"the agent's token": ownTok, "the exchanged token": exchangedTok,
		"agentg's STS secret": xchClientSecret, "the agent's IdP secret": "verysecret", "the upstream's secret": xchUpSecret} {
		if n := strings.Count(out, v); n != 0 {
			t.Errorf("agentg's log or stderr holds %s %d times", name, n)
		}
	}
	if !strings.Contains(string(logText), `"binding":"api-obo"`) {
		t.Error("the log names no binding: the grep above proved nothing")
	}
}

// agentg check names a token_exchange binding a request would get, and
// warns when agentg's own calls may not reach its STS; never a value.
func TestCredTokenExchangeCheck(t *testing.T) {
	policy := `
hosts:
  - allow: api.xch.test
intercept: [api.xch.test]
credentials:
  secrets:
    sts: {insecure_inline: ` + xchClientSecret + `}
  bindings:
    - id: api-obo
      host: api.xch.test
      token_exchange: {token_url: "https://sts.xch.test/oauth/token", client_id: agentg, client_secret: sts}
`
	pol := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(pol, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runAgentg(t, "check", pol, "--request", "GET https://api.xch.test/x")
	if code != 0 {
		t.Fatalf("check: %d\n%s", code, out)
	}
	for _, want := range []string{"binding=api-obo", "exchanges the agent's bearer token at https://sts.xch.test/oauth/token (client agentg, secret sts from insecure_inline)",
		"binding api-obo exchanges tokens at sts.xch.test:443, which rule default denies to agentg's own calls"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, xchClientSecret) {
		t.Errorf("check printed the secret:\n%s", out)
	}
}
