package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needCurl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (scripts/test.sh installs it when run as root)")
	}
	return path
}

// curl runs curl through the proxy and returns the status code it saw and
// its output.
func curl(t *testing.T, bin string, args ...string) (string, string) {
	t.Helper()
	args = append([]string{"-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_PROXY=", "no_proxy=", "HTTPS_PROXY=", "HTTP_PROXY=", "https_proxy=", "http_proxy=")
	out, _ := cmd.CombinedOutput()
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	return s[i+1:], s[:i]
}

func TestCurl(t *testing.T) {
	bin := needCurl(t)
	up := newUpstream(t, false, nil)
	tlsUp := newUpstream(t, true, nil)
	e := startProxy(t, basePolicy(`
agents:
  - name: builder
    password: s3cret
hosts:
  - allow: allowed.test
  - allow: example.com
    agents: [builder]
  - deny: denied.test
    id: curl-deny
`), nil)
	proxy := "http://" + e.addr

	code, out := curl(t, bin, "-x", proxy, "http://allowed.test:"+up.port+"/c")
	if code != "200" || !strings.Contains(out, "GET /c") {
		t.Errorf("curl plain allow: %s %q", code, out)
	}
	code, out = curl(t, bin, "-x", proxy, "http://denied.test:"+up.port+"/")
	if code != "403" || !strings.Contains(out, "curl-deny") {
		t.Errorf("curl plain deny: %s %q", code, out)
	}

	// HTTPS through a tunnel: curl verifies the upstream's own certificate.
	caFile := filepath.Join(t.TempDir(), "upstream.pem")
	writePEM(t, caFile, tlsUp.Certificate().Raw)
	code, out = curl(t, bin, "-x", proxy, "--proxy-user", "builder:s3cret", "--cacert", caFile, "https://example.com:"+tlsUp.port+"/s")
	if code != "200" || !strings.Contains(out, "GET /s") {
		t.Errorf("curl tunnel allow: %s %q", code, out)
	}
	e.waitEvent(map[string]any{"kind": "connect", "agent": "builder", "host": "example.com", "status": 200})

	// Without the agent's credentials the tunnel is refused before it exists.
	code, out = curl(t, bin, "-x", proxy, "--cacert", caFile, "https://example.com:"+tlsUp.port+"/s")
	if code == "200" || !strings.Contains(out, "403") {
		t.Errorf("curl tunnel deny: %s %q", code, out)
	}
	// curl's own proxytunnel for plain HTTP.
	code, _ = curl(t, bin, "-p", "-x", proxy, "http://allowed.test:"+up.port+"/t")
	if code != "200" {
		t.Errorf("curl -p: %s", code)
	}
}
