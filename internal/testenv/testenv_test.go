package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveAgentgBinary()
	os.Exit(code)
}

func TestLeafVerifies(t *testing.T) {
	ca, err := NewCA("testenv root")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name    string
		hosts   []string
		verify  string // name to verify
		from    time.Time
		to      time.Time
		wantErr string
	}{
		{"dns", []string{"a.test", "b.test"}, "b.test", now.Add(-time.Hour), now.Add(time.Hour), ""},
		{"ip", []string{"a.test", "127.0.0.1"}, "127.0.0.1", now.Add(-time.Hour), now.Add(time.Hour), ""},
		{"other name", []string{"a.test"}, "c.test", now.Add(-time.Hour), now.Add(time.Hour), "not c.test"},
		{"expired", []string{"a.test"}, "a.test", now.Add(-2 * time.Hour), now.Add(-time.Hour), "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := ca.Leaf(tt.hosts, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			_, err = leaf.Leaf.Verify(x509.VerifyOptions{DNSName: tt.verify, Roots: ca.Pool()})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("verify %s: %v, want error %q", tt.verify, err, tt.wantErr)
			}
		})
	}
	if _, err := ca.Leaf(nil, now, now); err == nil {
		t.Error("leaf without hosts: no error")
	}
	if b, err := ca.KeyPEM(); err != nil || !strings.Contains(string(b), "PRIVATE KEY") {
		t.Errorf("KeyPEM: %v %q", err, b)
	}
}

func TestUpstreams(t *testing.T) {
	ca, err := NewCA("testenv root")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf([]string{"up.test", "127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		opts      UpstreamOptions
		roots     func(u *Upstream) *tls.Config
		path      string
		wantBody  string
		wantLen   int64
		wantProto string
	}{
		{"plain echo", UpstreamOptions{}, nil, "/x", "GET /x host=", -1, "HTTP/1.1"},
		{"tls own cert", UpstreamOptions{TLS: true}, func(u *Upstream) *tls.Config {
			return u.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		}, "/y", "GET /y host=", -1, "HTTP/1.1"},
		{"tls test CA", UpstreamOptions{Cert: &leaf}, func(*Upstream) *tls.Config { return &tls.Config{RootCAs: ca.Pool()} }, "/z", "GET /z", -1, "HTTP/1.1"},
		{"h2", UpstreamOptions{Cert: &leaf, HTTP2: true}, func(*Upstream) *tls.Config { return &tls.Config{RootCAs: ca.Pool()} }, "/h", "GET /h", -1, "HTTP/2.0"},
		{"sized", UpstreamOptions{Handler: http.HandlerFunc(Sized), Quiet: true}, nil, "/any?n=200000", "", 200000, "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := StartUpstream(tt.opts)
			defer u.Close()
			tr := &http.Transport{ForceAttemptHTTP2: true}
			if tt.roots != nil {
				tr.TLSClientConfig = tt.roots(u)
			}
			defer tr.CloseIdleConnections()
			for range 2 { // keep-alive: one connection
				resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(u.URL + tt.path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.HasPrefix(string(body), tt.wantBody) || tt.wantLen >= 0 && int64(len(body)) != tt.wantLen {
					t.Errorf("GET %s: %d %d bytes %.40q", tt.path, resp.StatusCode, len(body), body)
				}
				if resp.Proto != tt.wantProto {
					t.Errorf("proto %s, want %s", resp.Proto, tt.wantProto)
				}
			}
			if n := u.ConnCount(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

const allowLoopback = `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: up.test
resolve:
  up.test: [127.0.0.1]
`

func TestAgentgProcess(t *testing.T) {
	up := StartUpstream(UpstreamOptions{})
	defer up.Close()
	dir := t.TempDir()
	a, err := StartAgentg(AgentgConfig{Dir: dir, Policy: allowLoopback, Args: []string{"--reload-interval", "0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	for path, want := range map[string]int{"/ok": 200} {
		resp, err := c.Get("http://" + up.HostPort("up.test") + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s through agentg: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if _, err := a.CAPool(); err != nil {
		t.Errorf("CA pool: %v", err)
	}
	if err := a.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	lines, err := ReadLog(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range lines {
		found = found || m["message"] == "decision" && m["path"] == "/ok" && m["decision"] == "allow"
	}
	if !found {
		t.Errorf("no allow decision for /ok in %s", a.LogFile)
	}

	// A second start on the same log finds its own serving line.
	b, err := StartAgentg(AgentgConfig{Dir: dir, Policy: allowLoopback})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Kill()
	if b.Addr == "" {
		t.Errorf("second start: address %q", b.Addr)
	}
	// Waiting on Cmd directly, as a test may, leaves Wait usable.
	b.Signal(syscall.SIGTERM)
	b.Cmd.Wait()
	if err := b.Wait(); err != nil {
		t.Errorf("Wait after Cmd.Wait: %v", err)
	}
}

func TestAgentgStartFails(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	_, err := StartAgentg(AgentgConfig{Dir: dir, Policy: "default: [\n"})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "policy.yaml") {
		t.Errorf("bad policy: %v, want an early exit naming policy.yaml", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to see agentg exit", d)
	}
	if _, err := StartAgentg(AgentgConfig{LogFile: filepath.Join(dir, "x.log")}); err == nil {
		t.Error("no Dir and no DataDir: no error")
	}
}
