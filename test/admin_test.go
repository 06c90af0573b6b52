package test

// Issue 10, the admin API: a listener of agentg's own, behind a bearer
// token, that no agent can reach through the proxy whatever the policy
// opens; metrics, the event stream, reload and the MCP state over it, and
// the CLI that uses it. Every test runs the real binary.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// adminAgentg is agentg with its admin API on a loopback port, and a
// client holding its token.
type adminAgentg struct {
	*testenv.Agentg
	token  string
	client *admin.Client
}

func startAdminAgentg(t *testing.T, cfg testenv.AgentgConfig) *adminAgentg {
	t.Helper()
	cfg.Binary = agentgBin
	if cfg.T == nil {
		cfg.T = t // the leak check: no secret value in anything agentg writes
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Args = append([]string{"--reload-interval", "0", "--shutdown-timeout", "2s"}, cfg.Args...)
	a, err := testenv.StartAgentg(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	if a.AdminAddr == "" {
		t.Fatalf("agentg did not log its admin address:\n%s", a.Stderr())
	}
	tok, err := a.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.NewClient(a.AdminAddr, tok)
	if err != nil {
		t.Fatal(err)
	}
	return &adminAgentg{Agentg: a, token: tok, client: c}
}

// adminGet is a GET of the admin API, direct, with auth as the
// Authorization header (none when empty).
func adminGet(t *testing.T, addr, path, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// loopbackOpen is a policy that lets agents reach any loopback address:
// the admin API would be reachable through the proxy but for agentg
// refusing its own addresses.
const loopbackOpen = `
default: allow
ips:
  - allow: 127.0.0.0/8
    id: loopback-open
resolve:
  admin.test: [127.0.0.1]
`

func TestAdminAPIRefusesWithoutToken(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: loopbackOpen})
	paths := []string{"/metrics", "/v1/events", "/v1/rules", "/v1/mcp/inventory", "/v1/mcp/pins", "/v1/policy/reload", "/no-such-path"}
	for _, p := range paths {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + a.token, "Bearer " + a.token + "x"} {
			code, body := adminGet(t, a.AdminAddr, p, auth)
			if code != http.StatusUnauthorized || !strings.Contains(body, "unauthorized") {
				t.Errorf("GET %s with %q: %d %q, want 401", p, auth, code, body)
			}
		}
	}
	// The probes answer without the token, as an orchestrator sends them.
	for _, p := range []string{"/healthz", "/readyz"} {
		for _, auth := range []string{"Bearer " + a.token, ""} {
			if code, body := adminGet(t, a.AdminAddr, p, auth); code != 200 {
				t.Errorf("GET %s with %q: %d %q", p, auth, code, body)
			}
		}
	}
	fi, err := os.Stat(filepath.Join(a.DataDir, admin.TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want mode 0600 beside the CA", fi, err)
	}
	// A restart keeps the token.
	if err := a.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	b := startAdminAgentg(t, testenv.AgentgConfig{Dir: filepath.Dir(a.LogFile), Policy: loopbackOpen})
	if b.token != a.token {
		t.Fatal("the token changed across a restart")
	}
}

// An agent can never reach the admin API through agentg, even under a
// policy that opens every loopback address, with the token or without,
// by IP, by a name that resolves to it, plain or through CONNECT.
func TestAdminAPINotReachableThroughProxy(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: loopbackOpen})
	_, adminPort, _ := net.SplitHostPort(a.AdminAddr)

	// The policy does open loopback: another loopback server is reached.
	up := testenv.StartUpstream(testenv.UpstreamOptions{})
	defer up.Close()
	proxied := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	resp, err := proxied.Get("http://" + up.HostPort("127.0.0.1") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a loopback upstream through the proxy: %d, want 200 (the policy opens 127.0.0.0/8)", resp.StatusCode)
	}

	for _, host := range []string{"127.0.0.1:" + adminPort, "admin.test:" + adminPort, "localhost:" + adminPort} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/healthz", nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := proxied.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Agentg-Rule") != "builtin:self" {
			t.Errorf("GET http://%s/healthz through the proxy: %d %q (rule %q), want 403 builtin:self",
				host, resp.StatusCode, body, resp.Header.Get("X-Agentg-Rule"))
		}
		cr, _ := rawRequest(t, a.Addr, "CONNECT "+host+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if cr.StatusCode != http.StatusForbidden || cr.Header.Get("X-Agentg-Rule") != "builtin:self" {
			t.Errorf("CONNECT %s: %d (rule %q), want 403 builtin:self", host, cr.StatusCode, cr.Header.Get("X-Agentg-Rule"))
		}
	}
}

// The admin API on a unix socket: mode 0600, and the CLI reaches it.
func TestAdminUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "agentg-admin") // socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "admin.sock")
	a := startAdminAgentg(t, testenv.AgentgConfig{Dir: dir, Admin: "unix:" + sock})
	if a.AdminAddr != "unix:"+sock {
		t.Fatalf("admin address %q, want unix:%s", a.AdminAddr, sock)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v, want mode 0600", fi, err)
	}
	if _, err := a.client.Rules(context.Background()); err != nil {
		t.Fatalf("rules over the socket: %v", err)
	}
	code, out := runAgentg(t, "mcp", "inventory", "--data-dir", a.DataDir, "--admin", a.AdminAddr)
	if code != 0 || !strings.Contains(out, "of the agentg at unix:"+sock) {
		t.Fatalf("mcp inventory over the socket: %d %s", code, out)
	}
}

// metricsOf scrapes /metrics and parses it as Prometheus does.
func metricsOf(t *testing.T, a *adminAgentg) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.AdminAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue sums the samples of name whose labels include labels: a
// counter's or gauge's value, a histogram's count; -1 when there is no
// such metric.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var total float64
	for _, m := range f.Metric {
		ok := true
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				found = found || lp.GetName() == k && lp.GetValue() == v
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// waitMetricAtLeast waits until the metric reaches want.
func waitMetricAtLeast(t *testing.T, a *adminAgentg, name string, labels map[string]string, want float64) {
	t.Helper()
	var got float64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got = metricValue(metricsOf(t, a), name, labels); got >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s%v = %v, want at least %v", name, labels, got, want)
}

// mcpAdminEnv is the real binary in front of a Go SDK MCP server on
// mcp.test (policy mcpBase with pinning), with its admin API.
type mcpAdminEnv struct {
	*adminAgentg
	server *testenv.MCPServer
	via    testenv.MCPClientConfig
}

func startMCPAdmin(t *testing.T, extra string) *mcpAdminEnv {
	t.Helper()
	dir := t.TempDir()
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	s := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA})
	a := startAdminAgentg(t, testenv.AgentgConfig{Dir: filepath.Join(dir, "agentg"), Policy: mcpPolicy(mcpBase + extra),
		Args: []string{"--upstream-ca", caFile}})
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	return &mcpAdminEnv{adminAgentg: a, server: s, via: testenv.MCPClientConfig{Proxy: a.URL(), Roots: pool, Revision: "2025-11-25"}}
}

func (e *mcpAdminEnv) connect(t *testing.T) *testenv.MCPClient {
	t.Helper()
	cl, err := testenv.ConnectMCP(mcpCtx(t), e.server.Mode, e.server.URL, e.via)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// /metrics moves with real traffic: HTTP decisions by rule, MCP tool
// calls by server, tool and decision, latencies, leaves and their cache,
// reloads.
func TestAdminMetricsMove(t *testing.T) {
	e := startMCPAdmin(t, "")
	before := metricsOf(t, e.adminAgentg)
	for _, name := range []string{"agentg_open_tunnels", "agentg_leaf_cache_hits_total", "agentg_policy_reloads_total", "agentg_policy_reload_failures_total", "agentg_build_info", "go_goroutines"} {
		if metricValue(before, name, nil) < 0 {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// A plain request the policy denies by default, one to a host it allows.
	proxied := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(e.URL())}}
	resp, err := proxied.Get("http://denied.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	denyHTTP := map[string]string{"kind": "http", "decision": "deny", "rule": "default"}
	waitMetricAtLeast(t, e.adminAgentg, "agentg_decisions_total", denyHTTP, metricValue(before, "agentg_decisions_total", denyHTTP)+1)

	// MCP through the Go SDK: one allowed call, one denied by rule no-delete.
	cl := e.connect(t)
	listAll(t, cl)
	args := map[string]any{"city": "Oslo"}
	res, err := callTool(t, cl, testenv.MCPToolEcho, args)
	wantEcho(t, res, err, args)
	res, err = callTool(t, cl, testenv.MCPToolDelete, nil)
	wantDenied(t, res, err, "no-delete")
	waitMetricAtLeast(t, e.adminAgentg, "agentg_mcp_tool_calls_total", map[string]string{"server": "srv", "tool": "echo", "decision": "allow"}, 1)
	waitMetricAtLeast(t, e.adminAgentg, "agentg_mcp_tool_calls_total", map[string]string{"server": "srv", "tool": "delete_project", "decision": "deny"}, 1)
	waitMetricAtLeast(t, e.adminAgentg, "agentg_decisions_total", map[string]string{"kind": "mcp", "rule": "no-delete"}, 1)
	waitMetricAtLeast(t, e.adminAgentg, "agentg_mcp_upstream_duration_seconds", map[string]string{"server": "srv"}, 1)
	waitMetricAtLeast(t, e.adminAgentg, "agentg_duration_seconds", map[string]string{"kind": "http"}, 2)
	waitMetricAtLeast(t, e.adminAgentg, "agentg_leaf_certificates_issued_total", nil, 1)
	waitMetricAtLeast(t, e.adminAgentg, "agentg_open_tunnels", nil, 1) // the SDK client's tunnel to mcp.test

	// A second client is a second handshake for mcp.test: a cached leaf.
	cl2 := e.connect(t)
	listAll(t, cl2)
	waitMetricAtLeast(t, e.adminAgentg, "agentg_leaf_cache_hits_total", nil, 1)

	// The hit counts of /v1/rules come from the same events.
	rs, err := e.client.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hits := map[string]uint64{}
	for _, r := range rs.Items {
		hits[r.ID] = r.Hits
	}
	if hits["no-delete"] < 1 || hits["default"] < 1 {
		t.Errorf("rule hits %v, want no-delete and default hit", hits)
	}
}

// The event stream delivers the events the filter picks, as logged.
func TestAdminEventStream(t *testing.T) {
	e := startMCPAdmin(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opened := make(chan struct{})
	got := make(chan admin.StreamEvent, 100)
	errc := make(chan error, 1)
	go func() {
		errc <- e.client.Events(ctx, admin.EventsRequest{Follow: true, Filter: admin.EventFilter{Kinds: []string{"mcp"}, Decisions: []string{"deny"}}},
			func() { close(opened) }, func(ev admin.StreamEvent) error { got <- ev; return nil })
	}()
	select {
	case <-opened:
	case err := <-errc:
		t.Fatalf("event stream: %v", err)
	}
	cl := e.connect(t)
	listAll(t, cl)
	args := map[string]any{"city": "Oslo"}
	res, err := callTool(t, cl, testenv.MCPToolEcho, args)
	wantEcho(t, res, err, args)
	res, err = callTool(t, cl, testenv.MCPToolDelete, nil)
	wantDenied(t, res, err, "no-delete")
	select {
	case ev := <-got:
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			t.Fatalf("event data %q: %v", ev.Data, err)
		}
		if ev.Type != "decision" || m["kind"] != "mcp" || m["decision"] != "deny" || m["tool"] != testenv.MCPToolDelete || m["rule"] != "no-delete" || ev.ID != m["id"] {
			t.Fatalf("first streamed event %+v %v, want the denied delete_project call (the allowed call and the HTTP exchanges filtered out)", ev, m)
		}
	case err := <-errc:
		t.Fatalf("event stream ended: %v", err)
	case <-ctx.Done():
		t.Fatal("no event on the stream")
	}
}

// A pin accepted through the API (the CLI, with the server running)
// takes effect at once: no reload, no SIGHUP.
func TestAdminMCPPinsAndInventoryCLI(t *testing.T) {
	e := startMCPAdmin(t, "  pinning: deny\n")
	changed, opts := changedHandler()
	via := e.via
	via.Options = opts
	cl, err := testenv.ConnectMCP(mcpCtx(t), e.server.Mode, e.server.URL, via)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	listAll(t, cl)
	args := map[string]any{"city": "Oslo"}
	res, err := callTool(t, cl, testenv.MCPToolMutable, args)
	wantEcho(t, res, err, args)

	code, out := runAgentg(t, "mcp", "inventory", "--data-dir", e.DataDir, "--admin", e.AdminAddr)
	if code != 0 || !strings.Contains(out, "of the agentg at "+e.AdminAddr) || !strings.Contains(out, "server srv") || !strings.Contains(out, testenv.MCPToolMutable) {
		t.Fatalf("mcp inventory through the API: %d\n%s", code, out)
	}

	rugPull(t, e.server, cl, changed)
	res, err = callTool(t, cl, testenv.MCPToolMutable, args)
	wantPinDenied(t, res, err)
	code, out = runAgentg(t, "mcp", "pins", "list", "--data-dir", e.DataDir, "--admin", e.AdminAddr)
	if code != 0 || !strings.Contains(out, "CHANGED (not accepted)") {
		t.Fatalf("mcp pins list through the API: %d\n%s", code, out)
	}
	code, out = runAgentg(t, "mcp", "pins", "accept", "srv", testenv.MCPToolMutable, "--data-dir", e.DataDir, "--admin", e.AdminAddr)
	if code != 0 || !strings.Contains(out, "has taken it in") {
		t.Fatalf("mcp pins accept through the API: %d\n%s", code, out)
	}
	res, err = callTool(t, cl, testenv.MCPToolMutable, args) // --reload-interval 0: only the API can have told it
	wantEcho(t, res, err, args)

	// A wrong token is an error that says what to do, not a silent read of
	// the files.
	bad := filepath.Join(t.TempDir(), "token")
	os.WriteFile(bad, []byte("not-the-token-0123456789\n"), 0o600)
	code, out = runAgentg(t, "mcp", "inventory", "--data-dir", e.DataDir, "--admin", e.AdminAddr, "--admin-token-file", bad)
	if code == 0 || !strings.Contains(out, "401") || !strings.Contains(out, "--admin off") {
		t.Fatalf("mcp inventory with a wrong token: %d\n%s", code, out)
	}
}

// Without --admin, the CLI asks the agentg serving with the data
// directory it was given, at the address that agentg recorded there, and
// never whatever holds the default port (here a decoy that refuses every
// token, as another agentg with another data directory would).
func TestAdminCLIFindsItsOwnAgentg(t *testing.T) {
	if ln, err := net.Listen("tcp", admin.DefaultAddr); err == nil {
		decoy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"not your agentg"}}`)
		})}
		go decoy.Serve(ln)
		t.Cleanup(func() { decoy.Close() })
	} // else something holds it already: the same hazard
	e := startMCPAdmin(t, "")
	code, out := runAgentg(t, "mcp", "inventory", "--data-dir", e.DataDir)
	if code != 0 || !strings.Contains(out, "of the agentg at "+e.AdminAddr) {
		t.Fatalf("mcp inventory without --admin: %d\n%s", code, out)
	}
	// Once it has stopped, the CLI reads the data directory's files.
	e.Agentg.Stop(10 * time.Second)
	if _, err := os.Stat(filepath.Join(e.DataDir, admin.AddrFile)); !os.IsNotExist(err) {
		t.Errorf("%s left behind after a clean stop: %v", admin.AddrFile, err)
	}
	code, out = runAgentg(t, "mcp", "inventory", "--data-dir", e.DataDir)
	if code != 0 || strings.Contains(out, "of the agentg at") {
		t.Fatalf("mcp inventory after the stop: %d\n%s", code, out)
	}
}

func TestAdminReload(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: "default: deny\nhosts:\n  - allow: ok.test\n"})
	proxied := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	status := func(u string) (int, string) {
		t.Helper()
		resp, err := proxied.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Agentg-Rule")
	}
	if code, rule := status("http://ok.test/"); code == http.StatusForbidden {
		t.Fatalf("ok.test before the reload: %d %s", code, rule)
	}
	if err := os.WriteFile(a.PolicyFile, []byte("default: deny\nhosts:\n  - deny: ok.test\n    id: now-denied\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.client.Reload(ctx); err != nil {
		t.Fatalf("reload through the API: %v", err)
	}
	if code, rule := status("http://ok.test/"); code != http.StatusForbidden || rule != "now-denied" {
		t.Fatalf("ok.test after the reload: %d %s, want 403 now-denied", code, rule)
	}
	// A broken policy: refused with its file and line, the last one stays.
	if err := os.WriteFile(a.PolicyFile, []byte("default: deny\nhosts:\n  - deny: \"a.*.test\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := a.client.Reload(ctx)
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || !strings.Contains(ae.Message, "policy.yaml:3") {
		t.Fatalf("reload of a broken policy: %v, want 422 naming policy.yaml:3", err)
	}
	if code, rule := status("http://ok.test/"); code != http.StatusForbidden || rule != "now-denied" {
		t.Fatalf("after the failed reload: %d %s, want the previous policy in force", code, rule)
	}
	waitMetricAtLeast(t, a, "agentg_policy_reloads_total", nil, 2)
	waitMetricAtLeast(t, a, "agentg_policy_reload_failures_total", nil, 1)
	waitFor(t, func() bool {
		for _, l := range readLog(t, a.LogFile) {
			if l["message"] == "policy reload failed; the previous policy stays in force" {
				return true
			}
		}
		return false
	}, "the failed reload in the log")
}

// `agentg events --follow` prints the events the flags pick as they
// happen.
func TestAdminEventsFollowCLI(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: "default: deny\nhosts:\n  - allow: ok.test\n  - deny: bad.test\n    id: no-bad\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentgBin, "events", "--follow", "--kind", "http", "--decision", "deny", "--agent", "127.0.0.1",
		"--data-dir", a.DataDir, "--admin", a.AdminAddr)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	following := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "following events") {
				following <- sc.Text()
			}
		}
	}()
	select {
	case <-following:
	case <-ctx.Done():
		t.Fatal("agentg events never said it follows")
	}
	proxied := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	for _, u := range []string{"http://ok.test:1/", "http://bad.test/secret"} { // allowed (then 502: nothing listens), denied
		if resp, err := proxied.Get(u); err == nil {
			resp.Body.Close()
		}
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("agentg events exited without printing an event")
		}
		for _, want := range []string{"http", "deny", "127.0.0.1", "bad.test:80/secret", "rule=no-bad"} {
			if !strings.Contains(l, want) {
				t.Fatalf("agentg events printed %q, want the denied request (%q missing)", l, want)
			}
		}
	case <-ctx.Done():
		t.Fatal("agentg events printed nothing")
	}

	// Without --follow: the recent events the flags pick, then done.
	var out string
	waitFor(t, func() bool {
		var code int
		code, out = runAgentg(t, "events", "--last", "5", "--decision", "deny", "--data-dir", a.DataDir, "--admin", a.AdminAddr)
		return code == 0 && strings.Contains(out, "bad.test:80/secret")
	}, "agentg events --last 5 printing the denied request")
	if strings.Contains(out, "ok.test") || strings.Contains(out, "following") {
		t.Fatalf("agentg events --last 5 --decision deny printed:\n%s", out)
	}
	if code, out := runAgentg(t, "events", "--last", "5000", "--data-dir", a.DataDir, "--admin", a.AdminAddr); code == 0 || !strings.Contains(out, "keeps the last 1000") {
		t.Fatalf("--last 5000: %d %s", code, out)
	}
}

// The CLI falls back to the data directory when no agentg serves.
func TestAdminCLIFallsBackToFiles(t *testing.T) {
	dir := t.TempDir()
	a := startAdminAgentg(t, testenv.AgentgConfig{Dir: dir})
	addr, dataDir := a.AdminAddr, a.DataDir
	if err := a.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	code, out := runAgentg(t, "mcp", "inventory", "--data-dir", dataDir, "--admin", addr)
	if code != 0 || strings.Contains(out, "of the agentg at") {
		t.Fatalf("mcp inventory with agentg stopped: %d %s, want the data directory read", code, out)
	}
	code, out = runAgentg(t, "events", "--follow", "--data-dir", dataDir, "--admin", addr)
	if code == 0 || !strings.Contains(out, "is agentg serving") {
		t.Fatalf("events with agentg stopped: %d %s", code, out)
	}
	if code, out = runAgentg(t, "events", "--data-dir", dataDir, "--admin", addr); code == 0 || !strings.Contains(out, "is agentg serving") {
		t.Fatalf("events without --follow, with agentg stopped: %d %s", code, out)
	}
}
