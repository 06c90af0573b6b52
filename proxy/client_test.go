package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// agentg's own client over real loopback sockets: each request (and each
// redirect hop) is decided by the policy as the agent it is made for or as
// agentg itself, dialed to the checked address only, never to agentg's own
// listener, with upstream TLS verified against the configured roots; one
// event per request.
func TestClient(t *testing.T) {
	// The allowed upstream, TLS (its certificate names example.com).
	var seenMu sync.Mutex
	var seen []string // what the plain upstream saw
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenMu.Lock()
		seen = append(seen, r.Host+r.URL.Path)
		seenMu.Unlock()
		io.WriteString(w, "plain")
	}))
	defer plain.Close()
	plainPort := portOf(plain.Listener.Addr())
	tlsUp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://denied.test:"+plainPort+"/stolen", http.StatusFound)
			return
		}
		io.WriteString(w, "tls:"+r.URL.Path)
	}))
	defer tlsUp.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsUp.Certificate())
	tlsPort := portOf(tlsUp.Listener.Addr())

	self, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	selfPort := portOf(self.Addr())
	policy := `default: deny
ips:
  - allow: 127.0.0.0/8
hosts:
  - allow: [example.com, marker.test, self.test]
  - deny: denied.test
  - allow: scoped.test
    agents: [builder]
  - deny: example.com
    agents: [builder]
http:
  - deny: "GET example.com/forbidden"
resolve:
  example.com: [127.0.0.1]
  marker.test: [127.0.0.1]
  denied.test: [127.0.0.1]
  scoped.test: [127.0.0.1]
  self.test: [127.0.0.1]
`
	log := &syncBuffer{}
	srv, err := New(Config{Policy: fixedPolicy{mustParse(t, policy)}, Log: audit.New(log), UpstreamRoots: roots, Resolver: noLookups{}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(self)
	defer srv.Shutdown(context.Background())
	c := srv.Client()
	if c != srv.Client() {
		t.Fatal("Client is not one client")
	}

	for _, tc := range []struct {
		name, url, agent string
		want             string // the body; "" when refused
		rule             string // the refusal's rule
	}{
		{"allowed, TLS verified", "https://example.com:" + tlsPort + "/ok", "", "tls:/ok", ""},
		{"denied host", "http://denied.test:" + plainPort + "/denied", "", "", "policy.yaml:"},
		{"no rule: the default", "http://unknown.test:" + plainPort + "/x", "", "", "default"},
		{"an http rule", "https://example.com:" + tlsPort + "/forbidden", "", "", "policy.yaml:"},
		{"agentg's own listener", "http://self.test:" + selfPort + "/loop", "", "", rules.RuleSelf},
		{"an agent's rule is not agentg's", "http://scoped.test:" + plainPort + "/scoped", "", "", "default"},
		{"as the agent it is made for", "http://scoped.test:" + plainPort + "/scoped", "builder", "plain", ""},
		{"the agent's deny holds through agentg", "https://example.com:" + tlsPort + "/ok", "builder", "", "policy.yaml:"},
		{"a redirect to a denied host is not followed", "https://example.com:" + tlsPort + "/redirect", "", "", "policy.yaml:"},
		{"not http", "ftp://example.com/x", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.agent != "" {
				ctx = ForAgent(ctx, tc.agent)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tc.url, nil)
			resp, err := c.Do(req)
			if tc.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != tc.want {
					t.Fatalf("body %q, want %q", b, tc.want)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: %s, want a refusal", tc.url, resp.Status)
			}
			var ref *RefusedError
			if !errors.As(err, &ref) {
				t.Fatalf("err %v, want a *RefusedError", err)
			}
			if !strings.HasPrefix(ref.Rule, tc.rule) {
				t.Fatalf("rule %q, want %q (%v)", ref.Rule, tc.rule, err)
			}
		})
	}
	// Positive evidence that the denied requests never reached the plain
	// upstream: a later allowed request did, and it saw only that one
	// and the agent's.
	resp, err := c.Get("http://marker.test:" + plainPort + "/marker")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	seenMu.Lock()
	got := strings.Join(seen, " ")
	seenMu.Unlock()
	if want := "scoped.test:" + plainPort + "/scoped marker.test:" + plainPort + "/marker"; got != want {
		t.Fatalf("the plain upstream saw %q, want %q", got, want)
	}

	// Without the roots, the TLS upstream's certificate is not trusted.
	srv2, err := New(Config{Policy: fixedPolicy{mustParse(t, policy)}, Log: audit.New(io.Discard), Resolver: noLookups{}})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := srv2.Client().Get("https://example.com:" + tlsPort + "/ok"); err == nil {
		resp.Body.Close()
		t.Fatal("an upstream certificate outside the roots was accepted")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err %v, want a certificate error", err)
	}

	// One event per request: 12 (the redirect's two hops are two), all
	// with agentg's door; the refused ones with their rule.
	var evs []audit.Event
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if evs = log.events(t); len(evs) >= 12 {
			break
		}
	}
	var lines []string
	for _, e := range evs {
		if e.Door != DoorClient {
			t.Errorf("event %+v: door %q", e, e.Door)
		}
		lines = append(lines, e.Agent+" "+e.Decision+" "+e.Host+e.Path+" "+itoa(e.Status))
	}
	want := []string{
		"agentg allow example.com/ok 200",
		"agentg deny denied.test/denied 403",
		"agentg deny unknown.test/x 403",
		"agentg deny example.com/forbidden 403",
		"agentg deny self.test/loop 403",
		"agentg deny scoped.test/scoped 403",
		"builder allow scoped.test/scoped 200",
		"builder deny example.com/ok 403",
		"agentg allow example.com/redirect 302",
		"agentg deny denied.test/stolen 403",
		"agentg deny /x 400",
		"agentg allow marker.test/marker 200",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
