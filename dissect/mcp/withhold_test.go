package mcp

import (
	"net/http"
	"strings"
	"testing"
)

// What a held answer (no MCP content type) may carry and still pass: on a
// 2024-11-05 POST, a 202's short acknowledgement text, never anything a
// decoder could read a message from.
func TestPassable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		ack    bool
		want   bool
	}{
		{"empty 202", 202, "", false, true},
		{"empty 200", 200, " \n", false, true},
		{"legacy Accepted", 202, "Accepted", true, true},
		{"legacy Accepted, CRLF", 202, "Accepted\r\n", true, true},
		{"Accepted off a legacy POST", 202, "Accepted", false, false},
		{"legacy 200 with text", 200, "Accepted", true, false},
		{"legacy 202 JSON-RPC", 202, `{"jsonrpc":"2.0","id":1,"result":{}}`, true, false},
		{"legacy 202 batch after BOM and space", 202, "\ufeff \t[{\"jsonrpc\":\"2.0\"}]", true, false},
		{"legacy 202 JSON without jsonrpc", 202, `{"id":1,"result":{}}`, true, false},
		{"legacy 202 too long", 202, strings.Repeat("a", maxAck+1), true, false},
		{"legacy 202 NUL", 202, "Accepted\x00", true, false},
		{"legacy 202 invalid UTF-8", 202, "Accepted\xff", true, false},
		{"401 page", 401, "<html>log in</html>", false, true},
		{"400 JSON-RPC", 400, `{"jsonrpc":"2.0","id":1,"result":{}}`, false, false},
	} {
		if got := passable(tc.status, []byte(tc.body), http.Header{}, tc.ack); got != tc.want {
			t.Errorf("%s: passable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
