package bench

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
)

// inProcess is agentg built in this process with proxy.New, for the Go
// benchmarks only: its allocations count in allocs/op, which an agentg
// process's cannot. The ratios come from the agentg process (Env.Agentg).
// It is in a test file so that the harness itself does not depend on
// proxy.Config, which is being reshaped.
type inProcess struct {
	url   *url.URL
	roots *x509.CertPool // trusts its CA only
}

// startInProcess serves Policy with audit events discarded (logging off)
// and the origin's CA as upstream roots.
func startInProcess(tb testing.TB, e *Env) *inProcess {
	tb.Helper()
	eng, err := rules.Parse("bench:policy.yaml", []byte(Policy))
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := certs.Init(filepath.Join(tb.TempDir(), "ca"), false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ca.Close() })
	issuer, err := certs.NewIssuer(ca, certs.IssuerOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := proxy.New(proxy.Config{
		Policy: rules.NewLive("", eng), Log: audit.New(io.Discard), DialTimeout: 5 * time.Second,
		Issuer: issuer, UpstreamRoots: e.roots,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	return &inProcess{url: &url.URL{Scheme: "http", Host: ln.Addr().String()}, roots: roots}
}

// client is Env.ClientFor's agentg client pointed at the in-process proxy.
func (p *inProcess) client(e *Env, sc Scenario) *http.Client {
	c := e.ClientFor(Agentg, sc, 1)
	tr := c.Transport.(*http.Transport)
	tr.Proxy = http.ProxyURL(p.url)
	if sc.Intercept {
		tr.TLSClientConfig.RootCAs = p.roots
	}
	return c
}
