package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// The gateway's own events, besides the guard's (which carry door
// "gateway" too): a request refused before any session (who), a server
// that did not answer a list in time, a name two servers both expose.
const (
	ActionUnavailable = "server-unavailable"
	ActionUnreachable = "server-unreachable"
	ActionCollision   = "name-collision"
	ActionUnrouted    = "server-request-unrouted"
	ActionLegacy      = "legacy-transport"

	ruleAuth        = "builtin:gateway-auth"
	ruleUnavailable = "builtin:gateway-upstream"
	ruleCollision   = "builtin:gateway-collision"
	ruleStdio       = "builtin:gateway-stdio"
)

func (g *Gateway) event(who Who, action, server string) *audit.Event {
	return &audit.Event{ID: g.cfg.Log.NewID(), Time: time.Now(), Kind: "mcp", Agent: who.Agent, Client: who.Client,
		Door: Door, Path: Path, MCP: &audit.MCP{Action: action, Server: server}}
}

// refused records a request the Authenticator refused.
func (g *Gateway) refused(r *http.Request, err error) {
	ev := g.event(Who{Client: r.RemoteAddr}, "", "")
	ev.Method, ev.Decision, ev.Rule, ev.Status = r.Method, "deny", ruleAuth, http.StatusUnauthorized
	ev.Reason = "gateway refused the request: " + err.Error()
	g.cfg.Log.Log(ev)
}

// unavailable records a server that a list went on without.
func (g *Gateway) unavailable(who Who, server, method string, err error) {
	ev := g.event(who, ActionUnavailable, server)
	ev.Method, ev.Decision, ev.Rule = method, "report", ruleUnavailable
	ev.Reason = "mcp server " + server + " did not answer " + method + ": " + err.Error() + "; the answer lists the servers that did"
	g.cfg.Log.Log(ev)
}

// collision records a name two servers both expose, hidden from both.
func (g *Gateway) collision(who Who, kind, name string, servers []string) {
	ev := g.event(who, ActionCollision, servers[0])
	ev.Decision, ev.Rule = "deny", ruleCollision
	ev.Reason = kind + " " + name + " is exposed by mcp servers " + servers[0] + " and " + servers[1] +
		": hidden from both, never shadowed (give one a prefix)"
	g.cfg.Log.Log(ev)
}

// spokeLegacy records a server that refused a Streamable HTTP initialize as a
// 2024-11-05 server does, and that the gateway now speaks HTTP+SSE to.
func (g *Gateway) spokeLegacy(who Who, server string) {
	ev := g.event(who, ActionLegacy, server)
	ev.Method, ev.Decision, ev.Rule = "initialize", "report", ruleUnavailable
	ev.Reason = "mcp server " + server + " refused a Streamable HTTP initialize with a 4xx status: spoken to in the 2024-11-05 HTTP+SSE transport"
	g.cfg.Log.Log(ev)
}

// unreachable records a request the guard let through that could not be
// sent to the server (its address refused, the connection failed).
func (g *Gateway) unreachable(who Who, server, method, why string) {
	ev := g.event(who, ActionUnreachable, server)
	ev.Method, ev.Decision, ev.Rule, ev.Status = method, "deny", ruleUnavailable, http.StatusBadGateway
	ev.Reason = "mcp server " + server + " unreachable: " + why
	g.cfg.Log.Log(ev)
}

// stdioRefused records a line of a command server's that the stdio
// multiplexer cannot read (so cannot route): it reaches no client.
func (g *Gateway) stdioRefused(server string, err error) {
	ev := g.event(Who{Agent: rules.ServerAgent(server)}, "", server)
	ev.Decision, ev.Rule = "deny", ruleStdio
	ev.Reason = "refused a line from mcp server " + server + ": " + err.Error()
	g.cfg.Log.Log(ev)
}

// stdioUnrouted records a request of a command server's that no client
// session can be said to have caused: the server got an error.
func (g *Gateway) stdioUnrouted(server, method, why string) {
	ev := g.event(Who{Agent: rules.ServerAgent(server)}, ActionUnrouted, server)
	ev.Method, ev.Decision, ev.Rule = method, "deny", ruleStdio
	ev.Reason = "mcp server " + server + " sent " + method + ", which cannot be routed to a client: " + why
	g.cfg.Log.Log(ev)
}

// RequestHeader carries, from ServeHTTP to the SDK server's handlers
// (which see the request's header, not its context), the event id of the
// gateway request a message came in. ServeHTTP sets it on every request
// it serves, replacing whatever a client sent under that name, so it is
// never a client's claim.
const RequestHeader = "Agentg-Gateway-Request"

// inbound is what the gateway's handlers know of the client request a
// call came in: its event id (the parent of every event the guard writes
// about the call upstream) and, on a 2025-11-25 POST stream, how to close
// that stream so that the client resumes it (SEP-1699).
type inbound struct {
	parent      string
	closeStream func(sdk.CloseSSEStreamArgs)
}

type inboundKey struct{}

// metaRequest carries the gateway request's event id in a 2024-11-05
// client's message, whose handler sees no header: ServeHTTP sets it in
// the POSTed message's _meta (replacing any client's), and withInbound
// takes it out before anything is sent on.
const metaRequest = "io.agentg/gateway-request"

// withInbound is ctx carrying what req says of the client request it came
// in, for the upstream requests made on its behalf.
func withInbound(ctx context.Context, req sdk.Request) context.Context {
	in := &inbound{parent: takeMetaRequest(req.GetParams())}
	if x := req.GetExtra(); x != nil && x.Header != nil {
		in.parent = x.Header.Get(RequestHeader)
		if x.Header.Get("MCP-Protocol-Version") == sseRevision {
			// The one revision with SSE polling: before it a server
			// does not close a call's stream for the client to poll,
			// and 2026-07-28 removed it.
			in.closeStream = x.CloseSSEStream
		}
	}
	if in.parent == "" && in.closeStream == nil {
		return ctx
	}
	return context.WithValue(ctx, inboundKey{}, in)
}

// takeMetaRequest removes metaRequest from p's _meta and returns it.
func takeMetaRequest(p sdk.Params) (id string) {
	defer func() {
		if recover() != nil { // a typed nil Params: no _meta
			id = ""
		}
	}()
	if p == nil {
		return ""
	}
	m := p.GetMeta()
	v, ok := m[metaRequest]
	if !ok {
		return ""
	}
	delete(m, metaRequest)
	id, _ = v.(string)
	return id
}

// markLegacy is a 2024-11-05 client's POST with the request's event id
// in its message's _meta (metaRequest); r as it is when the body is not
// one JSON-RPC request.
func markLegacy(r *http.Request, id string) *http.Request {
	body, whole := peekBody(r)
	if !whole {
		return r
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m["method"] == nil || m["id"] == nil {
		return r
	}
	params := m["params"]
	if params == nil || string(params) == "null" {
		params = json.RawMessage(`{}`)
	}
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil || p == nil {
		return r
	}
	var meta map[string]json.RawMessage
	if raw := p["_meta"]; raw != nil && string(raw) != "null" {
		if json.Unmarshal(raw, &meta) != nil || meta == nil {
			return r
		}
	}
	if meta == nil {
		meta = map[string]json.RawMessage{}
	}
	meta[metaRequest], _ = json.Marshal(id)
	var err error
	if p["_meta"], err = json.Marshal(meta); err != nil {
		return r
	}
	if m["params"], err = json.Marshal(p); err != nil {
		return r
	}
	out, err := json.Marshal(m)
	if err != nil {
		return r
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(out)), int64(len(out))
	return r
}

func inboundOf(ctx context.Context) *inbound {
	in, _ := ctx.Value(inboundKey{}).(*inbound)
	return in
}

// requestEvent is the gateway request's own event, written when it is
// answered: the door admitted it (the Authenticator named its agent), and
// every MCP event of the calls it carried names it as their parent, as
// the proxy's MCP events name their HTTP exchange.
func (g *Gateway) requestEvent(id string, who Who, r *http.Request, status int, start time.Time) {
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing: net/http's 200
	}
	g.cfg.Log.Log(&audit.Event{ID: id, Time: start, Kind: "http", Agent: who.Agent, Client: who.Client,
		Method: r.Method, Scheme: "http", Host: r.Host, Path: r.URL.Path, Door: Door,
		Decision: "allow", Rule: ruleAuth, Status: status, Duration: time.Since(start)})
}

// statusWriter records the status a handler answered with. It passes
// Flush on (the SDK streams SSE) and unwraps for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
