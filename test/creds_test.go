package test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 16, first slice: agentg attaches a credential the agent never
// holds, after every check allowed the request, and writes its name,
// never its value.

const (
	credValue  = "tok-9d41c7e0b2-UPSTREAM"
	credValue2 = "qv-5a7f3c19e8-QUERY"
)

func credPolicy(port string) string {
	return `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [api.cred.test, other.cred.test]
resolve:
  api.cred.test: [127.0.0.1]
  other.cred.test: [127.0.0.1]
intercept: [api.cred.test, other.cred.test]
http:
  - deny: "DELETE api.cred.test/**"
    id: no-delete
credentials:
  secrets:
    up: {env: AGENTG_TEST_CRED_TOKEN}
    q: {command: [printf, "%s\n", ` + credValue2 + `], timeout: 5s}
    missing: {env: AGENTG_TEST_CRED_NOT_SET}
  bindings:
    - id: up-bearer
      host: api.cred.test
      path: /v1/**
      secret: up
      header: {name: Authorization, value: "Bearer {{secret}}"}
    - id: q-param
      host: api.cred.test
      path: /q/**
      secret: q
      query: api_key
    - id: broken
      host: api.cred.test
      path: /broken/**
      secret: missing
      header: {name: X-Api-Key, value: "{{secret}}"}
    - id: plain-ok
      host: other.cred.test
      path: /plain/**
      secret: up
      insecure_http: true
      header: {name: X-Api-Key, value: "k={{secret}}"}
`
}

type seenReq struct {
	method, path, query string
	auth, key           []string
}

func TestCredInjection(t *testing.T) {
	var mu sync.Mutex
	var seen []seenReq
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, seenReq{r.Method, r.Host + r.URL.Path, r.URL.RawQuery, r.Header.Values("Authorization"), r.Header.Values("X-Api-Key")})
		mu.Unlock()
		if r.URL.Path != "/q/x" && r.URL.Path != "/plain/x" && r.Header.Get("Authorization") != "Bearer "+credValue {
			http.Error(w, "no credential", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	})
	last := func() seenReq {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return seenReq{}
		}
		return seen[len(seen)-1]
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }

	upCA, err := testenv.NewCA("cred upstream root")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := upCA.Leaf([]string{"api.cred.test", "other.cred.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: h})
	defer up.Close()
	plain := testenv.StartUpstream(testenv.UpstreamOptions{Handler: h})
	defer plain.Close()

	dir := t.TempDir()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	testenv.Secrets(t, credValue2) // from a command: not declared by the policy
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: credPolicy(up.Port),
		Env:  append(os.Environ(), "AGENTG_TEST_CRED_TOKEN="+credValue),
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL()),
		TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(method, u string, hdr http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	api := "https://api.cred.test:" + up.Port

	// The client sends no credential; the upstream that requires one gets it.
	if st, body := do("GET", api+"/v1/x", nil); st != 200 {
		t.Fatalf("GET /v1/x without a credential: %d %q", st, body)
	}
	if got := last(); len(got.auth) != 1 || got.auth[0] != "Bearer "+credValue {
		t.Fatalf("the upstream saw Authorization %q", got.auth)
	}
	waitEventOf(t, a, "the injected request's event", func(e map[string]any) bool {
		return e["path"] == "/v1/x" && e["binding"] == "up-bearer" && e["credential"] == "up" && e["decision"] == "allow"
	})

	// The agent's own Authorization is replaced, not sent beside it.
	if st, body := do("GET", api+"/v1/own", http.Header{"Authorization": {"Bearer agent-own", "Basic Zm9vOmJhcg=="}}); st != 200 {
		t.Fatalf("GET /v1/own with the agent's header: %d %q", st, body)
	}
	if got := last(); len(got.auth) != 1 || got.auth[0] != "Bearer "+credValue {
		t.Fatalf("the agent's header was not replaced: upstream saw %q", got.auth)
	}

	// A query binding: the agent's api_key is replaced, the rest kept;
	// the value comes from a command.
	if st, body := do("GET", api+"/q/x?a=1&api_key=agent&b=2", nil); st != 200 {
		t.Fatalf("GET /q/x: %d %q", st, body)
	}
	if q, _ := url.ParseQuery(last().query); q.Get("a") != "1" || q.Get("b") != "2" || len(q["api_key"]) != 1 || q.Get("api_key") != credValue2 {
		t.Fatalf("the upstream saw the query %q", last().query)
	}

	// A host no binding names gets nothing (the upstream refuses it).
	if st, _ := do("GET", "https://other.cred.test:"+up.Port+"/v1/x", nil); st != 401 {
		t.Fatalf("GET other.cred.test: %d, want the upstream's 401", st)
	}
	if got := last(); got.path != "other.cred.test:"+up.Port+"/v1/x" || len(got.auth) != 0 {
		t.Fatalf("an unbound host got %+v", got)
	}
	// Plain http to the bound host: bindings are https-only unless they
	// say insecure_http.
	if st, _ := do("GET", "http://api.cred.test:"+plain.Port+"/v1/x", nil); st != 401 {
		t.Fatalf("GET over plain http: %d, want the upstream's 401", st)
	}
	if got := last(); len(got.auth) != 0 {
		t.Fatalf("a secret went out in clear text: %+v", got)
	}

	// A binding that says insecure_http applies to absolute-form plain
	// http too, and replaces the agent's header there as well.
	if st, body := do("GET", "http://other.cred.test:"+plain.Port+"/plain/x", http.Header{"X-Api-Key": {"agent-own"}}); st != 200 {
		t.Fatalf("GET plain /plain/x: %d %q", st, body)
	}
	if got := last(); len(got.key) != 1 || got.key[0] != "k="+credValue || len(got.auth) != 0 {
		t.Fatalf("plain http with insecure_http: upstream saw %+v", got)
	}
	waitEventOf(t, a, "the plain request's event", func(e map[string]any) bool {
		return e["path"] == "/plain/x" && e["scheme"] == "http" && e["binding"] == "plain-ok" && e["credential"] == "up"
	})

	// A request an HTTP rule denies is never sent, so never injected;
	// the marker after it shows the upstream was listening.
	before := count()
	if st, _ := do("DELETE", api+"/v1/x", nil); st != 403 {
		t.Fatalf("DELETE: %d, want 403", st)
	}
	if st, _ := do("GET", api+"/v1/marker", nil); st != 200 {
		t.Fatalf("marker: %d", st)
	}
	mu.Lock()
	after := append([]seenReq(nil), seen[before:]...)
	mu.Unlock()
	if len(after) != 1 || after[0].path != "api.cred.test:"+up.Port+"/v1/marker" {
		t.Fatalf("after the denied DELETE the upstream saw %+v, want the marker only", after)
	}
	waitEventOf(t, a, "the denied request's event", func(e map[string]any) bool {
		return e["method"] == "DELETE" && e["rule"] == "no-delete" && e["binding"] == nil && e["credential"] == nil
	})

	// A secret that cannot be read: refused, never sent without it.
	before = count()
	if st, body := do("GET", api+"/broken/x", nil); st != 502 || !strings.Contains(body, "missing") {
		t.Fatalf("GET /broken/x: %d %q, want a 502 naming the secret", st, body)
	}
	if count() != before {
		t.Fatal("a request whose secret could not be read reached the upstream")
	}
	waitEventOf(t, a, "the failed injection's event", func(e map[string]any) bool {
		err, _ := e["error"].(string)
		return e["path"] == "/broken/x" && e["binding"] == "broken" && e["credential"] == "missing" && e["status"] == float64(502) &&
			strings.Contains(err, "secret missing (env AGENTG_TEST_CRED_NOT_SET)")
	})

	// Nothing agentg wrote holds a value: the leak check (T above) greps
	// its log, stdout and stderr, and the events streamed, at the end;
	// the value from the env is declared by the policy, the command's
	// here. The log must name the credential, or the grep proves nothing.
	a.Stop(2 * time.Second)
	logText, err := os.ReadFile(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), `"credential":"up"`) {
		t.Error("the log names no credential: the grep above proved nothing")
	}
}

// agentg check names the binding a request would get and where its secret
// comes from, warns about an inline secret, and never prints a value.
func TestCredCheck(t *testing.T) {
	policy := strings.Replace(credPolicy("443"), "    missing: {env: AGENTG_TEST_CRED_NOT_SET}\n",
		"    missing: {env: AGENTG_TEST_CRED_NOT_SET}\n    demo: {insecure_inline: "+credValue+"}\n", 1) +
		"    - {id: demo, host: other.cred.test, secret: demo, basic: {user: bot}}\n"
	pol := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(pol, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Secrets(t, credValue) // the leak check greps the output below for it
	code, out, err := testenv.RunAgentg(t, agentgBin, nil, "check", pol, "--request", "GET https://api.cred.test/v1/x", "--request", "GET https://other.cred.test/",
		"--request", "DELETE https://api.cred.test/v1/x")
	if err != nil || code != 0 {
		t.Fatalf("check: %d\n%s", code, out)
	}
	for _, want := range []string{"binding=up-bearer", "attaches secret up from env AGENTG_TEST_CRED_TOKEN",
		"binding=demo", "secret demo from insecure_inline", "secret demo is written in the policy (insecure_inline)"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "binding=") != 2 { // up-bearer and demo
		t.Errorf("a denied request was shown a binding:\n%s", out)
	}
}
