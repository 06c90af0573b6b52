package test

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// A policy that opens everything that reaches this host: the unspecified
// addresses and loopback, and names mapped onto them.
const selfOpen = `
default: allow
ips:
  - allow: 127.0.0.0/8
    id: loopback-open
  - allow: 0.0.0.0/8
    id: zero-open
  - allow: ::/128
    id: unspecified6-open
  - allow: ::1/128
    id: loopback6-open
resolve:
  zero.test: [0.0.0.0]
  zero6.test: ["::"]
  admin.test: [127.0.0.1]
intercept: [zero.test, zero6.test]
`

// agentg never reaches itself, however the address of one of its
// listeners is spelled: the admin API, the proxy's own port and the DNS
// filter's TCP port, named by every spelling that reaches this host, are
// refused as builtin:self through absolute-form requests and CONNECT
// (also to a host the policy intercepts), and the admin API never answers
// one of them.
func TestSelfEverySpelling(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: selfOpen})
	_, adminPort, _ := net.SplitHostPort(a.AdminAddr)
	_, proxyPort, _ := net.SplitHostPort(a.Addr)
	if len(a.DNS) == 0 {
		t.Fatal("the DNS filter does not listen")
	}
	_, dnsPort, _ := net.SplitHostPort(a.DNS[0])

	// The policy does open loopback: another loopback server is reached,
	// by 0.0.0.0 too.
	up := testenv.StartUpstream(testenv.UpstreamOptions{})
	defer up.Close()
	proxied := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	for _, h := range []string{"127.0.0.1", "0.0.0.0"} {
		resp, err := proxied.Get("http://" + up.HostPort(h) + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a loopback upstream at %s through the proxy: %d, want 200 (the policy opens it)", h, resp.StatusCode)
		}
	}

	spellings := []string{
		"127.0.0.1", "0.0.0.0", "0", "0x0", "00.0.0.0", "0.0", "0.0.0", "000", "0x00000000",
		"127.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.0.0.2", "localhost",
		"[::]", "[::1]", "[0:0:0:0:0:0:0:0]", // IPv4-mapped literals are refused earlier, as non-public (and proxy/self_test.go)
		"zero.test", "zero6.test", "admin.test",
	}
	for _, port := range []string{adminPort, proxyPort, dnsPort} {
		for _, host := range spellings {
			hp := host + ":" + port
			resp, body := rawRequest(t, a.Addr, "GET http://"+hp+"/healthz HTTP/1.1\r\nHost: "+hp+"\r\nAuthorization: Bearer "+a.token+"\r\n\r\n")
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Agentg-Rule") != "builtin:self" {
				t.Errorf("GET http://%s/healthz through the proxy: %d %q (rule %q), want 403 builtin:self",
					hp, resp.StatusCode, body, resp.Header.Get("X-Agentg-Rule"))
			}
			if strings.Contains(body, `"status"`) {
				t.Errorf("GET http://%s/healthz: the admin API answered: %q", hp, body)
			}
			cr, body := rawRequest(t, a.Addr, "CONNECT "+hp+" HTTP/1.1\r\nHost: "+hp+"\r\n\r\n")
			if cr.StatusCode != http.StatusForbidden || cr.Header.Get("X-Agentg-Rule") != "builtin:self" {
				t.Errorf("CONNECT %s: %d %q (rule %q), want 403 builtin:self", hp, cr.StatusCode, body, cr.Header.Get("X-Agentg-Rule"))
			}
		}
	}
	// One decision, one event: every refusal above is an event of rule
	// builtin:self, the positive control's requests are not. A marker
	// request after them all: once its event is in the log file (written
	// in order), every event before it is there, and the count is final.
	resp, err := proxied.Get("http://" + up.HostPort("127.0.0.1") + "/self-marker")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var evs []map[string]any
	waitFor(t, func() bool {
		evs = readLog(t, a.LogFile)
		return slices.ContainsFunc(evs, func(ev map[string]any) bool { return ev["path"] == "/self-marker" })
	}, "the marker's event in the log")
	n := 0
	for _, ev := range evs {
		if ev["rule"] == "builtin:self" {
			n++
		}
	}
	if want := 2 * 3 * len(spellings); n != want {
		t.Fatalf("%d events of rule builtin:self, want %d", n, want)
	}
}
