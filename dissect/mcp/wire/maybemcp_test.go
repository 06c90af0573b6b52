package wire

import (
	"net/http"
	"testing"
)

func TestMayBeMCP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		header map[string]string
		want   bool
	}{
		{"POST", http.MethodPost, nil, true},
		{"GET, no stream", http.MethodGet, map[string]string{"Accept": "text/html"}, false},
		{"GET for an event stream", http.MethodGet, map[string]string{"Accept": "application/json, Text/Event-Stream"}, true},
		{"HEAD for an event stream", http.MethodHead, map[string]string{"Accept": "text/event-stream"}, false},
		{"DELETE with a session", http.MethodDelete, map[string]string{"mcp-session-id": "s"}, true},
		{"PUT with a protocol version", http.MethodPut, map[string]string{"MCP-Protocol-Version": "2025-06-18"}, true},
		{"a header named Mcp-", http.MethodGet, map[string]string{"Mcp-": "x"}, false},
		{"DELETE", http.MethodDelete, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, "http://x.test/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				r.Header[k] = []string{v} // as sent, not canonicalised
			}
			if got := MayBeMCP(r); got != tc.want {
				t.Fatalf("MayBeMCP = %v, want %v", got, tc.want)
			}
		})
	}
}
