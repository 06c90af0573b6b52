package app

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/agentg/agentg/internal/buildinfo"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/creds/vault"
	"github.com/agentg/agentg/internal/testenv"
)

// The tests start a whole agentg in this process, as `agentg serve` does,
// on free loopback ports, and speak to it over real sockets.

// policyAllowing allows host (resolved to loopback) under the rule id.
func policyAllowing(verb, host, id string) string {
	return "default: deny\nips:\n  - allow: 127.0.0.1/32\n    id: open-loopback\nresolve:\n  " + host + ": [127.0.0.1]\nhosts:\n  - " + verb + ": " + host + "\n    id: " + id + "\n"
}

// testConfig is a config as serve's defaults would make it, on loopback
// ports, with the policy in a file and the events in another.
func testConfig(t *testing.T, policy string) Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	return Config{
		PolicyFile: path, Listen: "127.0.0.1:0", Stdout: io.Discard, Stderr: io.Discard,
		LogFile: filepath.Join(dir, "events.log"), LogFlushInterval: 100 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, FirstBytesTimeout: 10 * time.Second, TunnelIdleTimeout: time.Minute,
		MaxTunnels: 100, MaxTunnelsPerAgent: 100, InventoryInterval: time.Second,
		ReadHeaderTimeout: 10 * time.Second, BodyIdleTimeout: 10 * time.Second,
		CA:  CAConfig{DataDir: data},
		DNS: []string{"127.0.0.1:0"},
		Admin: AdminConfig{Addr: "127.0.0.1:0", ReadHeaderTimeout: 5 * time.Second, BodyTimeout: 5 * time.Second,
			MaxConns: 10},
		Approvals: ApprovalConfig{KeepAlive: 15 * time.Second, MaxPending: 100},
		Build:     buildinfo.Info{Version: "test"},
	}
}

// start starts cfg and shuts it down when the test ends (if the test has
// not).
func start(t *testing.T, cfg Config) *App {
	t.Helper()
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background(), "test end") })
	return a
}

// getVia sends GET u through the proxy at a and returns status and body.
func getVia(t *testing.T, a *App, u string) (int, string) {
	t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: a.Addr().String()})}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readEvents decodes the log file's decision events.
func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		if ev["message"] == "decision" {
			out = append(out, ev)
		}
	}
	return out
}

// waitDecision waits (bounded) until the log file holds a decision
// event with every field of want, and returns it.
func waitDecision(t *testing.T, path string, want map[string]any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, ev := range readEvents(t, path) {
			if matches(ev, want) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision event matching %v in %s", want, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func matches(ev, want map[string]any) bool {
	for k, v := range want {
		if ev[k] != v {
			return false
		}
	}
	return true
}

func TestStartServesEveryDoor(t *testing.T) {
	up := testenv.StartUpstream(testenv.UpstreamOptions{})
	defer up.Close()
	cfg := testConfig(t, policyAllowing("allow", "allowed.test", "allow-it"))
	a := start(t, cfg)

	if code, body := getVia(t, a, "http://allowed.test:"+up.Port+"/through-app"); code != 200 || !strings.Contains(body, "/through-app") {
		t.Fatalf("GET through the app: %d %q", code, body)
	}
	waitDecision(t, cfg.LogFile, map[string]any{"kind": "http", "path": "/through-app", "decision": "allow", "rule": "allow-it"})
	if code, _ := getVia(t, a, "http://denied.test:"+up.Port+"/"); code != 403 {
		t.Fatalf("a host the policy does not allow: %d, want 403", code)
	}

	// The DNS filter answers on the address it reports, with the
	// policy's decision: a name it does not allow does not exist.
	if len(a.DNSAddrs()) != 1 || strings.HasSuffix(a.DNSAddrs()[0], ":0") {
		t.Fatalf("DNS addresses %v, want one bound address", a.DNSAddrs())
	}
	q := new(dns.Msg)
	q.SetQuestion("denied.test.", dns.TypeA)
	ans, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, a.DNSAddrs()[0])
	if err != nil || ans.Rcode != dns.RcodeNameError {
		t.Fatalf("DNS query for a denied name: %v %v, want NXDOMAIN", ans, err)
	}
	waitDecision(t, cfg.LogFile, map[string]any{"kind": "dns", "decision": "deny"})
	// The admin API answers with the token in the data directory, and
	// its address is recorded there for the CLI.
	tok, err := os.ReadFile(filepath.Join(cfg.CA.DataDir, admin.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := admin.ReadAddr(cfg.CA.DataDir)
	if err != nil || recorded != a.AdminAddr() {
		t.Fatalf("recorded admin address %q (%v), want %q", recorded, err, a.AdminAddr())
	}
	c, err := admin.NewClient(a.AdminAddr(), strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Approvals(ctx); err != nil {
		t.Fatalf("admin API through the app: %v", err)
	}
}

func TestReloadChangesDecision(t *testing.T) {
	up := testenv.StartUpstream(testenv.UpstreamOptions{})
	defer up.Close()
	cfg := testConfig(t, policyAllowing("allow", "allowed.test", "allow-it"))
	cfg.ReloadInterval = 0 // only Reload reloads: no poll may do it for the test
	a := start(t, cfg)
	if code, _ := getVia(t, a, "http://allowed.test:"+up.Port+"/before"); code != 200 {
		t.Fatalf("before the reload: %d", code)
	}
	if err := os.WriteFile(cfg.PolicyFile, []byte(policyAllowing("deny", "allowed.test", "now-denied")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if code, _ := getVia(t, a, "http://allowed.test:"+up.Port+"/after"); code != 403 {
		t.Fatalf("after the reload: %d, want 403", code)
	}
	waitDecision(t, cfg.LogFile, map[string]any{"path": "/after", "decision": "deny", "rule": "now-denied"})

	// A policy that does not parse keeps the one in force.
	if err := os.WriteFile(cfg.PolicyFile, []byte("hosts: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Fatal("Reload of a broken policy: no error")
	}
	if code, _ := getVia(t, a, "http://allowed.test:"+up.Port+"/broken"); code != 403 {
		t.Fatalf("after a failed reload: %d, want 403 (the policy in force)", code)
	}
	waitDecision(t, cfg.LogFile, map[string]any{"path": "/broken", "decision": "deny", "rule": "now-denied"})
}

func TestShutdownEndsTunnelsAndFlushesLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c) // echo, forever
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cfg := testConfig(t, policyAllowing("allow", "allowed.test", "allow-it"))
	// Events wait in the buffer for an hour: only Shutdown's flush can
	// have written the tunnel's event, which is logged when it ends.
	cfg.LogFlushInterval = time.Hour
	cfg.ShutdownTimeout = 200 * time.Millisecond
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "CONNECT allowed.test:"+port+" HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	// Neither TLS nor HTTP/1 from its first byte: the tunnel is opaque.
	io.WriteString(c, "\x00png")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "\x00png" {
		t.Fatalf("echo through the tunnel: %q %v", buf, err)
	}

	if err := a.Shutdown(context.Background(), "test"); err == nil {
		t.Log("shutdown: the tunnel ended within the grace")
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Shutdown returned with the proxy still serving")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel still open after Shutdown")
	}
	evs := readEvents(t, cfg.LogFile)
	if len(evs) == 0 {
		t.Fatal("no decision event in the log after Shutdown")
	}
	last := evs[len(evs)-1]
	if !matches(last, map[string]any{"kind": "connect", "decision": "allow", "rule": "allow-it", "bytes_up": float64(4)}) {
		t.Fatalf("last event %v, want the tunnel's, with its 4 bytes", last)
	}
	// The admin address is no longer recorded: a CLI must not find it.
	if where, err := admin.ReadAddr(cfg.CA.DataDir); err == nil && where != "" {
		t.Fatalf("admin address %q still recorded after Shutdown", where)
	}
	a.Close() // again: nothing happens twice
}

func TestStartFailsClosedAndReleases(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"policy does not parse", func(c *Config) { os.WriteFile(c.PolicyFile, []byte("hosts: [\n"), 0o644) }, "policy"},
		{"no policy at all", func(c *Config) { c.PolicyFile = "" }, "no policy"},
		{"data directory others may write", func(c *Config) { os.Chmod(c.CA.DataDir, 0o777) }, "not trusted"},
		{"listen address taken", func(c *Config) { c.Listen = busy.Addr().String() }, "listen"},
		{"half a CA of one's own", func(c *Config) { c.CA.Cert = "x.pem" }, "--ca-cert and --ca-key go together"},
		{"webhook unsigned", func(c *Config) { c.Approvals.Webhook = "http://127.0.0.1:1/" }, "secret"},
		{"vault key others may read", func(c *Config) {
			os.MkdirAll(c.CA.DataDir, 0o700)
			os.WriteFile(filepath.Join(c.CA.DataDir, vault.KeyFile), make([]byte, 32), 0o644)
		}, "vault.key has mode 0644"},
		{"vault key a KMS cannot give", func(c *Config) { c.VaultKey = "softkms:path=/nonexistent/vault.pem" }, "vault key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, policyAllowing("allow", "allowed.test", "allow-it"))
			tt.mod(&cfg)
			a, err := Start(context.Background(), cfg)
			if err == nil {
				a.Shutdown(context.Background(), "test")
				t.Fatal("Start: no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want it to say %q", err, tt.want)
			}
			// What it opened is closed again: the admin address is not
			// left recorded.
			if where, err := admin.ReadAddr(cfg.CA.DataDir); err == nil && where != "" {
				t.Fatalf("admin address %q left recorded after a failed Start", where)
			}
		})
	}
}

// With a reload interval the policy file is watched: an edit reaches the
// next requests without Reload, and the reload is logged.
func TestReloadLoopPicksUpEdits(t *testing.T) {
	up := testenv.StartUpstream(testenv.UpstreamOptions{})
	defer up.Close()
	cfg := testConfig(t, policyAllowing("allow", "allowed.test", "allow-it"))
	cfg.ReloadInterval = 20 * time.Millisecond
	a := start(t, cfg)
	if code, _ := getVia(t, a, "http://allowed.test:"+up.Port+"/before"); code != 200 {
		t.Fatalf("before the edit: %d", code)
	}
	// A later modification time than the loaded file's, whatever the
	// file system's timestamp resolution.
	if err := os.WriteFile(cfg.PolicyFile, []byte(policyAllowing("deny", "allowed.test", "now-denied")), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(cfg.PolicyFile, later, later); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := getVia(t, a, "http://allowed.test:"+up.Port+"/poll")
		if code == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edited policy never took effect: still %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitDecision(t, cfg.LogFile, map[string]any{"path": "/poll", "decision": "deny", "rule": "now-denied"})
}

// The embedded default policy serves and has nothing to reload: Reload
// says so and is no error.
func TestEmbeddedPolicyReload(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.PolicyFile = ""
	cfg.DefaultPolicy = []byte(policyAllowing("deny", "blocked.test", "embedded-deny"))
	a := start(t, cfg)
	if err := a.Reload(); err != nil {
		t.Fatalf("Reload of the embedded policy: %v", err)
	}
	if code, _ := getVia(t, a, "http://blocked.test:1/"); code != 403 {
		t.Fatalf("embedded policy: %d, want 403", code)
	}
	waitDecision(t, cfg.LogFile, map[string]any{"host": "blocked.test", "decision": "deny", "rule": "embedded-deny"})
}

// The token vault is opened in the data directory at start, its key
// created 0600 there, and what is put in it is not in any file in plain
// text.
func TestVaultOpened(t *testing.T) {
	cfg := testConfig(t, policyAllowing("allow", "allowed.test", "allow-it"))
	a := start(t, cfg)
	v := a.Vault()
	if v == nil {
		t.Fatal("no vault")
	}
	if err := v.Put("oauth/x/access", []byte("vault-value-7d1c")); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := v.Get("oauth/x/access"); err != nil || !ok || string(got) != "vault-value-7d1c" {
		t.Fatalf("Get: %q %v %v", got, ok, err)
	}
	fi, err := os.Stat(filepath.Join(cfg.CA.DataDir, vault.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("vault.key: %v %v", fi, err)
	}
	filepath.Walk(cfg.CA.DataDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "vault-value-7d1c") {
				t.Errorf("%s holds the value in plain text", p)
			}
		}
		return nil
	})
}
