package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// HTTP rules decide every request agentg sees, on every door, and decide
// on what the upstream will execute, not on one spelling of it.

// Issue 11: http rules were asked only inside intercepted tunnels, so a
// plain http:// request passed any method and path rule.
func TestHTTPRulesPlainAbsoluteForm(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e, _ := newMitmEnv(t, mitmPolicy(`
http:
  - deny: "DELETE plain.test/**"
    id: no-delete
`), nil)
	resp, body := rawRequest(t, e.addr, "DELETE http://plain.test:"+p+"/repos/x HTTP/1.1\r\nHost: plain.test:"+p+"\r\n\r\n")
	if resp.StatusCode != 403 || resp.Header.Get("X-Agentg-Rule") != "no-delete" {
		t.Fatalf("DELETE over plain HTTP: %d %q rule %q", resp.StatusCode, body, resp.Header.Get("X-Agentg-Rule"))
	}
	e.waitEvent(map[string]any{"kind": "http", "method": "DELETE", "path": "/repos/x", "decision": "deny", "rule": "no-delete", "status": 403})
	if resp, body := rawRequest(t, e.addr, "GET http://plain.test:"+p+"/repos/x HTTP/1.1\r\nHost: plain.test:"+p+"\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("GET over plain HTTP: %d %q", resp.StatusCode, body)
	}
}

// Issue 11: a path rule was matched case-sensitively and with ";params"
// as part of a segment, while many servers fold case or strip params; and a
// POST carrying a method-override header is executed as that method by
// many frameworks.
func TestHTTPRulesPathAndMethodVariants(t *testing.T) {
	reqs := &requestLog{}
	plain := newUpstream(t, false, reqs.handler())
	e, upCA := newMitmEnv(t, mitmPolicy(`
http:
  - deny: "* plain.test/repos/**"
    id: no-repos
  - deny: "DELETE plain.test/**"
    id: no-delete
`), nil)
	secure := tlsUpstream(t, upCA.leaf(t, "plain.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), reqs.handler())
	mitm := &interceptEnv{env: e, upCA: upCA}
	doors := []struct {
		name string
		do   func(t *testing.T, method, path string, hdr http.Header) int
	}{
		{"plain", func(t *testing.T, method, path string, hdr http.Header) int {
			var extra strings.Builder
			for k, vs := range hdr {
				for _, v := range vs {
					extra.WriteString(k + ": " + v + "\r\n")
				}
			}
			host := "plain.test:" + plain.port
			resp, _ := rawRequest(t, e.addr, method+" http://"+host+path+" HTTP/1.1\r\nHost: "+host+"\r\n"+extra.String()+"Content-Length: 0\r\n\r\n")
			return resp.StatusCode
		}},
		{"intercepted", func(t *testing.T, method, path string, hdr http.Header) int {
			req, err := http.NewRequest(method, "https://plain.test:"+secure.port+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = hdr
			resp, err := mitm.mitmClient(false).Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}},
	}
	tests := []struct {
		name, method, path string
		hdr                http.Header
		status             int
	}{
		{"upper-case path", "GET", "/REPOS/x", nil, 403},
		{"path parameter", "GET", "/repos;a/x", nil, 403},
		{"path parameter elsewhere", "GET", "/other;a/x", nil, 200},
		{"plain POST", "POST", "/other", nil, 200},
		{"X-HTTP-Method-Override", "POST", "/other", http.Header{"X-Http-Method-Override": {"DELETE"}}, 403},
		{"X-HTTP-Method", "POST", "/other", http.Header{"X-Http-Method": {"DELETE"}}, 403},
		{"X-Method-Override", "POST", "/other", http.Header{"X-Method-Override": {"delete"}}, 403},
	}
	for _, door := range doors {
		for _, tt := range tests {
			t.Run(door.name+"/"+tt.name, func(t *testing.T) {
				before := len(reqs.all())
				if got := door.do(t, tt.method, tt.path, tt.hdr); got != tt.status {
					t.Fatalf("%s %s: %d, want %d", tt.method, tt.path, got, tt.status)
				}
				if tt.status == 403 && len(reqs.all()) != before {
					t.Fatalf("the refused request reached the upstream: %q", reqs.all()[before:])
				}
			})
		}
	}
}
