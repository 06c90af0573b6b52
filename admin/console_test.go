package admin

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The console's files are served without the token, with headers that
// keep the page to itself; nothing else is, however the path is spelled.
func TestConsoleServing(t *testing.T) {
	ts := startServer(t, Config{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		method, path string
		status       int
		ctype        string // prefix; "" for any
		body         string // substring
	}{
		{"GET", "/console/", 200, "text/html", "<title>agentg console</title>"},
		{"HEAD", "/console/", 200, "text/html", ""},
		{"GET", "/console/index.html", 200, "text/html", "console.js"},
		{"GET", "/console/console.js", 200, "text/javascript", "sessionStorage"},
		{"GET", "/console/console.css", 200, "text/css", "--deny"},
		{"GET", "/console", 301, "", ""},
		{"GET", "/console/nope.js", 404, "application/json", "not_found"},
		{"GET", "/console/../v1/rules", 404, "application/json", "not_found"},
		{"GET", "/console/%2e%2e/v1/rules", 404, "application/json", "not_found"},
		{"POST", "/console/", 405, "application/json", "method_not_allowed"},
		// The data stays behind the token.
		{"GET", "/v1/rules", 401, "application/json", "unauthorized"},
		{"GET", "/consolex", 401, "application/json", "unauthorized"},
		{"GET", "/", 401, "application/json", "unauthorized"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, "http://"+ts.addr+tt.path, nil)
		req.URL.Opaque = tt.path // send the path exactly as written
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(string(b), tt.body) {
			t.Errorf("%s %s: %d %q %.80q, want %d %q containing %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.status, tt.ctype, tt.body)
		}
		if tt.status == 301 && resp.Header.Get("Location") != ConsolePath {
			t.Errorf("%s: Location %q, want %s", tt.path, resp.Header.Get("Location"), ConsolePath)
		}
		if strings.HasPrefix(tt.path, "/console/") && tt.status == 200 {
			for k, want := range map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
				if !strings.Contains(resp.Header.Get(k), want) {
					t.Errorf("%s: %s %q, want %q", tt.path, k, resp.Header.Get(k), want)
				}
			}
			if strings.Contains(resp.Header.Get("Content-Security-Policy"), "unsafe") {
				t.Errorf("%s: the CSP allows unsafe sources", tt.path)
			}
		}
	}
}
