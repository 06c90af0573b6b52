package test

import (
	"cmp"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPerAgentRules(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, basePolicy(`
agents:
  - name: builder
    password: s3cret
  - name: local
    cidrs: [127.0.0.0/8]
  - name: tester
    cidrs: [127.0.0.0/8]
hosts:
  - allow: allowed.test
    agents: [builder]
    id: builder-only
  - allow: example.com
    agents: [local]
    id: local-only
`), nil)
	u := "http://allowed.test:" + p + "/"

	if resp, _ := get(t, e.client("builder", "s3cret", nil), u); resp.StatusCode != 200 {
		t.Errorf("builder: %d, want 200", resp.StatusCode)
	}
	e.waitEvent(map[string]any{"agent": "builder", "rule": "builder-only", "decision": "allow"})

	// Another named agent has no such rule: the default denies.
	if resp, _ := get(t, e.client("tester", "", nil), u); resp.StatusCode != 403 {
		t.Errorf("tester: %d, want 403", resp.StatusCode)
	}
	e.waitEvent(map[string]any{"agent": "tester", "rule": "default", "decision": "deny"})

	// A wrong password is refused before any decision.
	resp, body := get(t, e.client("builder", "wrong", nil), u)
	if resp.StatusCode != 407 || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Errorf("bad password: %d %q", resp.StatusCode, body)
	}
	e.waitEvent(map[string]any{"status": 407, "decision": "deny"})

	// Without credentials the source address maps to "local".
	if resp, _ := get(t, e.client("", "", nil), "http://example.com:"+p+"/"); resp.StatusCode != 200 {
		t.Errorf("local by CIDR: %d, want 200", resp.StatusCode)
	}
	e.waitEvent(map[string]any{"agent": "local", "rule": "local-only"})
	if resp, _ := get(t, e.client("", "", nil), u); resp.StatusCode != 403 {
		t.Errorf("local on builder's rule: %d, want 403", resp.StatusCode)
	}

	// CONNECT is identified the same way.
	resp, _ = rawRequest(t, e.addr, "CONNECT allowed.test:"+p+" HTTP/1.1\r\nHost: allowed.test\r\nProxy-Authorization: Basic YnVpbGRlcjp3cm9uZw==\r\n\r\n")
	if resp.StatusCode != 407 {
		t.Errorf("CONNECT with a bad password: %d, want 407", resp.StatusCode)
	}
}

func TestListFormats(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, `
default: allow
ips:
  - allow: 127.0.0.1/32
resolve:
  plain.test: [127.0.0.1]
  sub.plain.test: [127.0.0.1]
  hosted.test: [127.0.0.1]
  ads.test: [127.0.0.1]
  good.ads.test: [127.0.0.1]
  fine.test: [127.0.0.1]
lists:
  - path: lists/plain.txt
    format: plain
  - path: lists/hosts
    format: hosts
  - path: lists/adblock.txt
    format: adblock
`, map[string]string{
		"lists/plain.txt":   "# plain list\n\nplain.test\n",
		"lists/hosts":       "# hosts file\n127.0.0.1 localhost\n0.0.0.0 hosted.test other.test\n",
		"lists/adblock.txt": "[Adblock Plus 2.0]\n! comment\n||ads.test^\n@@||good.ads.test^\n||fine.test^$third-party\nexample.com##.banner\n",
	})
	c := e.client("", "", nil)
	tests := []struct {
		host   string
		status int
		rule   string
	}{
		{"plain.test", 403, "lists/plain.txt:3"},
		{"sub.plain.test", 403, "lists/plain.txt:3"},
		{"hosted.test", 403, "lists/hosts:3"},
		{"ads.test", 403, "lists/adblock.txt:3"},
		{"good.ads.test", 200, "lists/adblock.txt:4"},
		{"fine.test", 200, "default"}, // unknown modifier: skipped, not guessed at
	}
	for _, tt := range tests {
		resp, body := get(t, c, "http://"+tt.host+":"+p+"/")
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d %q, want %d", tt.host, resp.StatusCode, body, tt.status)
		}
		ev := e.waitEvent(map[string]any{"host": tt.host})
		if !strings.HasSuffix(ev.str("rule"), tt.rule) {
			t.Errorf("%s: rule %q, want suffix %q", tt.host, ev.str("rule"), tt.rule)
		}
	}
}

func TestHotReload(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	reloaded := make(chan error, 10)
	ctx, cancel := contextWithCancel()
	defer cancel()
	go e.live.Watch(ctx, 20*time.Millisecond, func(err error) { reloaded <- err })

	c := e.client("", "", nil)
	u := "http://allowed.test:" + p + "/"
	if resp, _ := get(t, c, u); resp.StatusCode != 200 {
		t.Fatalf("before reload: %d", resp.StatusCode)
	}

	// A valid change takes effect without a restart.
	writeFile(t, e.policy, basePolicy("hosts:\n  - deny: allowed.test\n    id: now-denied\n"))
	if err := waitReload(t, reloaded); err != nil {
		t.Fatalf("valid reload failed: %v", err)
	}
	if resp, _ := get(t, c, u); resp.StatusCode != 403 || resp.Header.Get("X-Agentg-Rule") != "now-denied" {
		t.Fatalf("after reload: %d %q", resp.StatusCode, resp.Header.Get("X-Agentg-Rule"))
	}

	// A broken file is refused with file:line and the old policy stays.
	writeFile(t, e.policy, basePolicy("hosts:\n  - allow: allowed.test\n  - deny: \"a.*.test\"\n"))
	err := waitReload(t, reloaded)
	if err == nil || !strings.Contains(err.Error(), "policy.yaml:") {
		t.Fatalf("broken reload: err = %v, want file:line", err)
	}
	if resp, _ := get(t, c, u); resp.StatusCode != 403 {
		t.Fatalf("broken reload replaced the policy: %d", resp.StatusCode)
	}

	// SIGHUP's path: an explicit Reload.
	writeFile(t, e.policy, basePolicy("hosts:\n  - allow: allowed.test\n"))
	if err := e.live.Reload(); err != nil {
		t.Fatal(err)
	}
	e.srv.CloseIdleConnections()
	if resp, _ := get(t, c, u); resp.StatusCode != 200 {
		t.Fatalf("after explicit reload: %d", resp.StatusCode)
	}
}

func waitReload(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s")
		return nil
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	// A different size guarantees the watcher sees a change even when the
	// mtime granularity hides it.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// A pooled upstream connection is reused only for an address this request
// passed: agents whose CIDR rules differ never share one.
func TestPooledConnectionsRespectPerAgentIPRules(t *testing.T) {
	// Two origins on one port, at 127.0.0.1 and 127.0.0.2, each saying which
	// it is, so that one name can reach either.
	port := ""
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, cmp.Or(port, "0")))
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ip, err)
		}
		_, port, _ = net.SplitHostPort(ln.Addr().String())
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "served by "+ip)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	e := startProxy(t, `
default: deny
agents:
  - name: a
  - name: b
hosts:
  - allow: two.test
ips:
  - allow: 127.0.0.1/32
    agents: [a]
  - allow: 127.0.0.2/32
    agents: [b]
resolve:
  two.test: [127.0.0.1, 127.0.0.2]
`, nil)
	u := "http://two.test:" + port + "/"
	// Each request on its own client connection: only the proxy's upstream
	// pool could carry a's connection over to b.
	for i, agent := range []string{"a", "b", "a", "b"} {
		resp, body := rawRequest(t, e.addr, "GET "+u+" HTTP/1.1\r\nHost: two.test:"+port+"\r\nProxy-Authorization: Basic "+basic(agent, "")+"\r\n\r\n")
		want := map[string]string{"a": "served by 127.0.0.1", "b": "served by 127.0.0.2"}[agent]
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d as %s: %d %q, want %q", i, agent, resp.StatusCode, body, want)
		}
	}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
