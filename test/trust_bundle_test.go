package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// `eval "$(agentg ca trust-env)"` adds agentg's CA to what runtimes trust
// instead of replacing it: through agentg, an intercepted host (whose
// leaf agentg issues) and a passed-through host (whose certificate chains
// to a root the runtime trusted before, here given as --roots, as a
// corporate bundle would be) both verify, in curl, Python's urllib and
// requests, and Node, each configured only by the exported variables.
func TestTrustBundleAddsTheCA(t *testing.T) {
	public, err := testenv.NewCA("a public root")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootsFile := filepath.Join(dir, "public-roots.pem")
	if err := public.WriteCert(rootsFile); err != nil {
		t.Fatal(err)
	}
	upstream := func(host string) *testenv.Upstream {
		leaf, err := public.Leaf([]string{host}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		u := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &leaf})
		t.Cleanup(u.Close)
		return u
	}
	pass, inter := upstream("pass.test"), upstream("inter.test")
	a := startAdminAgentg(t, testenv.AgentgConfig{Dir: filepath.Join(dir, "agentg"), Policy: `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [pass.test, inter.test]
resolve:
  pass.test: [127.0.0.1]
  inter.test: [127.0.0.1]
intercept: [inter.test]
`, Args: []string{"--upstream-ca", rootsFile}})

	code, out := runAgentg(t, "ca", "trust-env", "--data-dir", a.DataDir, "--roots", rootsFile)
	if code != 0 {
		t.Fatalf("ca trust-env: %d\n%s", code, out)
	}
	env := []string{"HTTPS_PROXY=" + a.URL().String(), "https_proxy=" + a.URL().String(), "NO_PROXY=", "no_proxy=", "HOME=" + dir}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			env = append(env, kv)
		}
	}
	bundle := filepath.Join(a.DataDir, "ca-bundle.pem")
	if !containsString(env, "SSL_CERT_FILE="+bundle) || !containsString(env, "NODE_EXTRA_CA_CERTS="+bundle) {
		t.Fatalf("trust-env does not point at the bundle %s:\n%s", bundle, out)
	}
	base := func() []string {
		var e []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			switch strings.ToUpper(k) {
			case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS":
				continue
			}
			e = append(e, kv)
		}
		return append(e, env...)
	}
	urls := map[string]string{
		"passed through": "https://pass.test:" + pass.Port + "/p",
		"intercepted":    "https://inter.test:" + inter.Port + "/i",
	}
	type client struct {
		name string
		argv func(url string) []string // nil: skip
		why  string
	}
	var clients []client
	if curl, err := exec.LookPath("curl"); err == nil {
		clients = append(clients, client{name: "curl", argv: func(u string) []string { return []string{curl, "-sS", "--max-time", "10", u} }})
	} else {
		clients = append(clients, client{name: "curl", why: "curl is not installed"})
	}
	py, pyErr := exec.LookPath("python3")
	if pyErr == nil {
		clients = append(clients, client{name: "python urllib", argv: func(u string) []string {
			return []string{py, "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())", u}
		}})
		if exec.Command(py, "-c", "import requests").Run() == nil {
			clients = append(clients, client{name: "python requests", argv: func(u string) []string {
				return []string{py, "-c", "import sys, requests; r = requests.get(sys.argv[1], timeout=10); r.raise_for_status(); sys.stdout.write(r.text)", u}
			}})
		} else {
			clients = append(clients, client{name: "python requests", why: "python3-requests is not installed"})
		}
	} else {
		clients = append(clients, client{name: "python", why: "python3 is not installed"})
	}
	if node, _, err := testenv.Node(); err == nil {
		// Node's https does not read HTTPS_PROXY: the script opens the
		// CONNECT tunnel itself; the trust is Node's own, built-in roots
		// plus NODE_EXTRA_CA_CERTS.
		script := `
const http = require('http'), tls = require('tls');
const u = new URL(process.argv[1]), p = new URL(process.env.HTTPS_PROXY);
http.request({host: p.hostname, port: p.port, method: 'CONNECT', path: u.host}).on('connect', (res, sock) => {
  if (res.statusCode !== 200) { console.error('CONNECT ' + res.statusCode); process.exit(1); }
  const s = tls.connect({socket: sock, servername: u.hostname}, () => {
    s.write('GET ' + u.pathname + ' HTTP/1.1\r\nHost: ' + u.host + '\r\nConnection: close\r\n\r\n');
  });
  s.on('data', d => process.stdout.write(d));
  s.on('error', e => { console.error(e.message); process.exit(1); });
}).on('error', e => { console.error(e.message); process.exit(1); }).end();
`
		clients = append(clients, client{name: "node", argv: func(u string) []string { return []string{node, "-e", script, u} }})
	} else {
		clients = append(clients, client{name: "node", why: err.Error()})
	}
	for _, c := range clients {
		for what, u := range urls {
			t.Run(c.name+" "+what, func(t *testing.T) {
				if c.argv == nil {
					t.Skip(c.why)
				}
				argv := c.argv(u)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
				cmd.Env = base()
				got, err := cmd.CombinedOutput()
				path := u[strings.LastIndex(u, "/"):]
				if err != nil || !strings.Contains(string(got), "GET "+path) {
					t.Errorf("%s %s: %v\n%s", c.name, u, err, got)
				}
			})
		}
	}
	// The intercepted requests were intercepted: agentg logged them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.WaitEvent(ctx, func(m map[string]any) bool {
		return m["kind"] == "http" && m["host"] == "inter.test" && m["path"] == "/i"
	}); err != nil {
		t.Fatal(fmt.Errorf("no intercepted request event: %w", err))
	}
}
