package wire

import (
	"net/http"
	"strings"
)

// Detection at the request's head, before any body is read: which
// requests on a destination no mcp.servers entry binds a door hands to
// the guard to be read.

// MayBeMCP reports a request that may be MCP on a destination no
// mcp.servers entry binds: a POST (the guard reads its body), a request
// carrying MCP's own headers, or a GET for an event stream, which may be a
// 2024-11-05 HTTP+SSE session (the guard peeks at its first event).
func MayBeMCP(r *http.Request) bool {
	return r.Method == http.MethodPost || hasMCPHeader(r.Header) ||
		r.Method == http.MethodGet && AcceptsEventStream(r.Header)
}

// AcceptsEventStream reports a request that asks for text/event-stream,
// as the clients of both MCP stream transports do.
func AcceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}

func hasMCPHeader(h http.Header) bool {
	for k := range h {
		if len(k) > 4 && strings.EqualFold(k[:4], "mcp-") {
			return true
		}
	}
	return false
}
