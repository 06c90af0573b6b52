package mcp

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// What MCP sends other than a POST. Its messages travel only as POST
// bodies: a GET opens a stream, DELETE ends a session, HEAD and OPTIONS
// carry nothing. A body on any of those would reach the server unread, and
// a server that reads it (an express.json() app routing every method, a
// framework that parses GET bodies) could run a tool from it; an HTTP
// upgrade (WebSocket, h2c) would hand the connection to a protocol no MCP
// revision defines, where every call escapes the rules. So on a governed
// server such a body, and an upgrade, are refused (an upgrade passes when
// the server's entry says "websocket: allow", unread); on a host no
// servers entry names, a body the guard sees there is read, and refused
// when a lenient reader could take it for JSON-RPC.

// Rules of the refusals here.
const (
	ruleMethod  = "builtin:mcp-method"
	ruleUpgrade = "builtin:mcp-upgrade"
)

// refuseUpgrade answers an upgrade on a governed server.
func (g *Guard) refuseUpgrade(w http.ResponseWriter, x *Exchange, h http.Header) {
	why := "an HTTP upgrade (Upgrade: " + strings.Join(h.Values("Upgrade"), ", ") + ") to MCP server " + x.Server +
		": no MCP transport runs over it (the server's entry may say websocket: allow)"
	g.logRefusal(x, ruleUpgrade, why, http.StatusForbidden)
	writeJSONError(w, http.StatusForbidden, nil, wire.CodeDenied, "agentg: "+why, map[string]any{"rule": ruleUpgrade})
}

// takeEmptyBody reads r's body when it may have one, and reports whether
// it had none; an empty one is replaced by no body at all, so that what
// is forwarded is exactly what was read.
func takeEmptyBody(r *http.Request) (empty bool, body []byte, err error) {
	none := func() (bool, []byte, error) {
		if r.Body != nil {
			r.Body.Close()
		}
		r.Body, r.ContentLength, r.TransferEncoding = http.NoBody, 0, nil
		r.Header.Del("Content-Length")
		r.Header.Del("Transfer-Encoding")
		return true, nil, nil
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		return none()
	}
	var one [1]byte
	n, err := io.ReadFull(r.Body, one[:])
	if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		return none()
	}
	if err != nil && n == 0 {
		return false, nil, err
	}
	return false, one[:n], nil
}

// serveOther runs a request of another method than POST: refused when it
// carries a body on a governed server (or any body that may be JSON-RPC
// elsewhere), or a method MCP does not use at all on a governed server;
// else handed to serve.
func (g *Guard) serveOther(w http.ResponseWriter, r *http.Request, x *Exchange, max int64, serve func()) {
	known := r.Method == http.MethodGet || r.Method == http.MethodDelete || r.Method == http.MethodHead || r.Method == http.MethodOptions
	if x.Governed() && !known {
		// A body under another method (PUT, PATCH) is nothing MCP
		// sends, and could still be read as a message.
		g.refuseMethod(w, x, r.Method+" is not an MCP transport method", http.StatusMethodNotAllowed)
		return
	}
	empty, first, err := takeEmptyBody(r)
	switch {
	case err != nil:
		g.refuseMethod(w, x, "cannot read the body of a "+r.Method+": "+err.Error(), http.StatusBadRequest)
		return
	case empty:
		serve()
		return
	case x.Governed():
		g.refuseMethod(w, x, "a body on a "+r.Method+" to MCP server "+x.Server+": MCP sends its messages by POST", http.StatusBadRequest)
		return
	}
	// Elsewhere the body is read, and passes if no reader could take it
	// for JSON-RPC.
	rest, err := wire.ReadBody(io.MultiReader(bytes.NewReader(first), r.Body), r.Header.Get("Content-Encoding"), max)
	r.Body.Close()
	if err != nil {
		g.refuseMethod(w, x, "cannot read the body of a "+r.Method+" to check it is not MCP: "+err.Error(), http.StatusBadRequest)
		return
	}
	ct, ctErr := wire.ContentType(r.Header)
	if ctErr != nil || wire.MayBeJSONRPC(rest, ct.Charset) {
		g.refuseMethod(w, x, "a body on a "+r.Method+" that may be a JSON-RPC message: MCP sends its messages by POST", http.StatusBadRequest)
		return
	}
	r.Header.Del("Content-Encoding")
	r.Body = io.NopCloser(bytes.NewReader(rest))
	r.ContentLength, r.TransferEncoding = int64(len(rest)), nil
	r.Header.Del("Transfer-Encoding")
	serve()
}

func (g *Guard) refuseMethod(w http.ResponseWriter, x *Exchange, why string, status int) {
	g.logRefusal(x, ruleMethod, why, status)
	writeJSONError(w, status, nil, wire.CodeInvalidRequest, "agentg: "+why, map[string]any{"rule": ruleMethod})
}

// ruleSSEEvent names the refusal of an event carrying JSON-RPC under a name
// other than message.
const ruleSSEEvent = "builtin:mcp-sse-event"

// refusedEvent logs an event refused from the server's stream, on which
// the stream goes on without it.
func (g *Guard) refusedEvent(x *Exchange) func(wire.Event) {
	return func(ev wire.Event) {
		g.logRefusal(x, ruleSSEEvent, "dropped an SSE event named "+strconv.Quote(ev.Type)+
			" whose data a client could read as a JSON-RPC message: only events named message carry one", 0)
	}
}
