package bench

import (
	"context"
	"crypto/x509"
	"github.com/agentg/agentg/internal/buildinfo"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/app"
)

// inProcess is agentg started in this process through internal/app (what
// `agentg serve` runs), for the Go benchmarks only: its allocations count
// in allocs/op, which an agentg process's cannot. The ratios come from the
// agentg process (Env.Agentg). It is in a test file so that the harness
// itself does not depend on the app's Config.
type inProcess struct {
	url   *url.URL
	roots *x509.CertPool // trusts its CA only
}

// startInProcess serves Policy with audit events discarded (logging off),
// the DNS filter and admin API off, and the origin's CA (the file the
// agentg process is given) as an extra upstream root.
func startInProcess(tb testing.TB, e *Env) *inProcess {
	tb.Helper()
	dir := tb.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(Policy), 0o600); err != nil {
		tb.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		tb.Fatal(err)
	}
	a, err := app.Start(context.Background(), app.Config{
		PolicyFile: policy, Listen: "127.0.0.1:0", Stdout: io.Discard, Stderr: io.Discard,
		ShutdownTimeout: 5 * time.Second, FirstBytesTimeout: 10 * time.Second, TunnelIdleTimeout: 5 * time.Minute,
		MaxTunnels: -1, MaxTunnelsPerAgent: -1, InventoryInterval: time.Minute,
		ReadHeaderTimeout: 30 * time.Second, BodyIdleTimeout: time.Minute,
		CA:              app.CAConfig{DataDir: data},
		UpstreamCAFiles: []string{filepath.Join(e.Dir, "upstream-ca.pem")},
		Admin:           app.AdminConfig{Addr: admin.Off},
		Approvals:       app.ApprovalConfig{KeepAlive: 15 * time.Second, MaxPending: 10000},
		Build:           buildinfo.Info{Version: "bench"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Shutdown(context.Background(), "benchmark done") })
	roots := x509.NewCertPool()
	roots.AddCert(a.CACertificate())
	return &inProcess{url: &url.URL{Scheme: "http", Host: a.Addr().String()}, roots: roots}
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
