package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/internal/app"
	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// syncBuffer collects the proxy's JSON lines; the proxy writes from many
// goroutines while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// event is one decoded audit line.
type event map[string]any

func (e event) str(k string) string {
	v, _ := e[k].(string)
	return v
}

func (e event) num(k string) float64 {
	v, _ := e[k].(float64)
	return v
}

// env is one running proxy with its policy directory and log.
type env struct {
	t      *testing.T
	dir    string
	policy string
	live   *rules.Live
	srv    *proxy.Server
	addr   string // proxy host:port
	log    *syncBuffer
	ca     *certs.CA     // with startProxyWith and tlsOpts
	state  *state.Memory // the MCP guard's runtime state (pins in dir/data)
	issuer *certs.Issuer
	app    *app.App // with startInProcess, which leaves srv, live, state nil
}

// caPool is a pool holding the proxy's CA: what a client that trusts
// agentg has.
func (e *env) caPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.ca.Certificate())
	return p
}

// startProxy writes policy (with files, relative to the policy's
// directory) and serves a proxy on a loopback port, without a CA.
func startProxy(t *testing.T, policy string, files map[string]string) *env {
	t.Helper()
	return startProxyWith(t, policy, files, nil)
}

// tlsOpts gives a proxy a CA (so it can intercept) and the roots it trusts
// for upstreams.
type tlsOpts struct {
	roots *x509.CertPool
}

func startProxyWith(t *testing.T, policy string, files map[string]string, opts *tlsOpts) *env {
	t.Helper()
	return startProxyOpts(t, policy, files, opts, nil)
}

// startProxyOpts is startProxyWith whose Config tweak may change before the
// proxy is built (timeouts, tunnel caps, a resolver).
func startProxyOpts(t *testing.T, policy string, files map[string]string, opts *tlsOpts, tweak func(*proxy.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, err := rules.Load(path)
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	e := &env{t: t, dir: dir, policy: path, live: rules.NewLive(path, eng), log: &syncBuffer{}}
	cfg := proxy.Config{Policy: e.live, Log: audit.New(e.log), DialTimeout: 2 * time.Second}
	store, err := state.NewMemory(state.Options{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.state = store
	cfg.MCP = &mcp.Guard{Log: cfg.Log, State: store, Limits: limit.NewRates(limit.Options{})}
	if opts != nil {
		e.ca, err = certs.Init(filepath.Join(dir, "ca"), false)
		if err != nil {
			t.Fatal(err)
		}
		e.issuer, err = certs.NewIssuer(e.ca, certs.IssuerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Issuer, cfg.UpstreamRoots = e.issuer, opts.roots
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e.srv, err = proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go e.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
	})
	return e
}

func (e *env) proxyURL(user, pass string) *url.URL {
	u := &url.URL{Scheme: "http", Host: e.addr}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u
}

// client returns an HTTP client that goes through the proxy as user
// (anonymous when empty) and trusts roots for HTTPS upstreams.
func (e *env) client(user, pass string, roots *tls.Config) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyURL(e.proxyURL(user, pass)), TLSClientConfig: roots}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// events returns the decision events logged so far.
func (e *env) events() []event {
	var out []event
	sc := bufio.NewScanner(strings.NewReader(e.log.String()))
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			e.t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		if ev.str("message") == "decision" {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvent waits for a decision event matching all of want.
func (e *env) waitEvent(want map[string]any) event {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range e.events() {
			if matches(ev, want) {
				return ev
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no event matching %v in log:\n%s", want, e.log.String())
	return nil
}

func matches(ev event, want map[string]any) bool {
	for k, v := range want {
		got, ok := ev[k]
		if !ok {
			return false
		}
		switch v := v.(type) {
		case int:
			if got != float64(v) {
				return false
			}
		default:
			if got != v {
				return false
			}
		}
	}
	return true
}

// upstream is a loopback origin that echoes what it received and counts
// the connections it accepted: a testenv.Upstream (the test environment
// bench/ shares) under the names the tests use. A test that builds its own
// sets Server and port; its connCount is 0.
type upstream struct {
	*httptest.Server
	port string
	src  *testenv.Upstream
}

func echoHandler(w http.ResponseWriter, r *http.Request) { testenv.Echo(w, r) }

// newUpstream serves h (nil: echoHandler) on loopback, over TLS with
// httptest's certificate when tlsOn.
func newUpstream(t *testing.T, tlsOn bool, h http.Handler) *upstream {
	t.Helper()
	return wrapUpstream(t, testenv.StartUpstream(testenv.UpstreamOptions{TLS: tlsOn, Handler: h}))
}

// wrapUpstream names u as the tests do, and closes it when the test ends.
func wrapUpstream(t *testing.T, u *testenv.Upstream) *upstream {
	t.Cleanup(u.Close)
	return &upstream{Server: u.Server, port: u.Port, src: u}
}

func (u *upstream) connCount() int {
	if u.src == nil {
		return 0
	}
	return int(u.src.ConnCount())
}

// rawRequest sends raw bytes to the proxy and returns the first response.
func rawRequest(t *testing.T, proxyAddr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return resp, string(body)
}

// tlsTrusting returns a client TLS config that trusts srv's certificate.
func tlsTrusting(srv *httptest.Server) *tls.Config {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}
