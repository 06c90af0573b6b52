package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// BenchmarkHeldCalls measures what holding calls for approval costs
// everyone else: 1,000 tools/calls held at once (each on its own
// intercepted connection, its event stream kept alive), while another
// agent's plain HTTP traffic runs through the same agentg. It reports
// that traffic's requests/s with nothing held and with the 1,000 held,
// and agentg's resident memory per held call (its whole connection: the
// CONNECT tunnel, the intercepted TLS session, the held exchange and its
// approval). One run per invocation:
//
//	go test -run '^$' -bench HeldCalls -benchtime 1x ./bench/
func BenchmarkHeldCalls(b *testing.B) {
	const held = 1000
	dir := b.TempDir()
	upCA, err := testenv.NewCA("bench mcp upstream")
	if err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		b.Fatal(err)
	}
	srv, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateless, CA: upCA})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	origin := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})})
	defer origin.Close()
	policy := `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [mcp.test, bench.test]
resolve:
  mcp.test: [127.0.0.1]
  bench.test: [127.0.0.1]
intercept: [mcp.test]
mcp:
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
  tools:
    - approve: "srv.echo"
      id: hold
      timeout: 10m
`
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Dir: filepath.Join(dir, "agentg"), Policy: policy,
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--approvals-max-pending", "5000", "--approval-keepalive", "5s"}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Kill()
	tok, err := a.AdminToken()
	if err != nil {
		b.Fatal(err)
	}
	api, _ := admin.NewClient(a.AdminAddr, tok)
	pool, err := a.CAPool()
	if err != nil {
		b.Fatal(err)
	}

	// Other traffic: 16 clients of agent "other" GETting bench.test.
	other := func(d time.Duration) float64 {
		proxy := a.URL()
		proxy.User = nil
		hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy), MaxIdleConnsPerHost: 64}}
		defer hc.CloseIdleConnections()
		target := "http://" + origin.HostPort("bench.test") + "/"
		var n atomic.Int64
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					resp, err := hc.Get(target)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						n.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return float64(n.Load()) / d.Seconds()
	}
	other(time.Second) // warm up: connections, caches
	idle := other(3 * time.Second)
	runtime.GC()
	before, err := rss(a.Pid())
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}

	// 1,000 calls held at once, each on its own connection.
	hc := testenv.MCPHTTPClient(testenv.MCPClientConfig{Proxy: a.URL(), Roots: pool})
	hc.Transport.(*http.Transport).MaxConnsPerHost = 0
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = held
	raw := testenv.NewMCPRaw(hc, testenv.MCPStateless, srv.URL, "2026-07-28")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var denied atomic.Int64
	for i := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := raw.Request(fmt.Sprint(i+1), "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"n": i}})
			rep, err := raw.Post(ctx, testenv.MCPPost{Body: body, Header: raw.Headers("tools/call", "echo")})
			if err == nil && strings.Contains(string(rep.Body), "denied") {
				denied.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := api.Approvals(context.Background())
		if err == nil && len(l) == held {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d calls held after 60s (%v)", len(l), held, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	runtime.GC()
	time.Sleep(500 * time.Millisecond)
	after, _ := rss(a.Pid())
	busy := other(3 * time.Second)

	b.ReportMetric(idle, "other-req/s-idle")
	b.ReportMetric(busy, "other-req/s-1000-held")
	b.ReportMetric(float64(after-before)/held/1024, "KiB-rss/held-call")
	fmt.Fprintf(os.Stderr, "held calls: %d; other agent: %.0f req/s idle, %.0f req/s with them held (%.0f%%); agentg RSS %d MiB -> %d MiB: %.1f KiB per held call\n",
		held, idle, busy, 100*busy/idle, before>>20, after>>20, float64(after-before)/held/1024)

	// Release them: each denied through the API, each answered.
	l, _ := api.Approvals(context.Background())
	for _, ap := range l {
		api.Deny(context.Background(), ap.ID, "bench")
	}
	wg.Wait()
	if n := denied.Load(); n != held {
		b.Errorf("%d of %d held calls got their denial", n, held)
	}
	if srv.Calls("echo") != 0 {
		b.Errorf("the server ran %d held calls", srv.Calls("echo"))
	}
}
