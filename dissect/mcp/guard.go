package mcp

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// Guard is the one entry a door calls for an HTTP exchange that is, or
// may be, MCP. It reads each JSON-RPC message in both directions with the
// strict codec, asks the policy about each (enforce.go is the only place
// that does), forwards what is allowed (rewritten where obligations say)
// through the exchange's Upstream, and answers what is refused in the
// framing the client is waiting for. It is safe for concurrent use.
type Guard struct {
	Log    *audit.Logger
	State  store.Store
	Limits *limit.Rates
	// Approvals holds the calls an approve rule covers (holdcall.go); nil
	// denies them: nothing could approve them.
	Approvals *approval.Broker
	// KeepAlive is how often a held call's stream gets a comment line;
	// 0: DefaultKeepAlive.
	KeepAlive time.Duration
	// Now is the clock for latencies and rate limits; nil: time.Now.
	Now func() time.Time
	// Leaks is the leak guard (creds.Guard): every client message is
	// looked at for held values and placeholders (enforce.go, leak), and
	// every event masks the values it would show. nil: none.
	Leaks *creds.Guard
	// Turns are the agents' last model turns, which the proxy keeps as
	// it reads them: each tools/call is tied to the turn that asked for
	// it, or marked unrequested (llmlink.go). nil: no call is linked or
	// marked.
	Turns *llm.Recent

	// inflight are the request ids in flight in each stateful session,
	// across its POSTs (ids.go).
	inflight inFlightIDs
	// causes are the calls in flight on stream sessions, which their
	// servers' egress is attributed to (causes.go).
	causes causeTable
}

// Exchange is what a door knows of the exchange it hands over, and the
// way on to the server: nothing else reaches the guard.
type Exchange struct {
	// Upstream sends a request the guard lets through to the checked
	// destination and writes the server's answer into the writer it is
	// given (the proxy's one forwarder, bound to this exchange). It is
	// the guard's only way upstream; nil refuses the exchange.
	Upstream http.Handler
	Engine   *rules.Engine
	Agent    string
	// Server is the policy name the destination is bound to
	// (rules.MCPRules.Server); "" when no mcp.servers entry names it.
	Server string
	// URL is the request's checked URL, for the inventory.
	URL string
	// Parent is the exchange's event id: every MCP event names it.
	Parent string
	Client string
	Host   string // the checked destination and path, for events
	Port   uint16
	Path   string
	// Scheme is "https" inside TLS agentg terminated, "http" otherwise:
	// a credential binding may hold for one only.
	Scheme string
	// Door is the listener the exchange's connection came in through
	// ("transparent"; "" for the explicit proxy), and OriginalDst the
	// ip:port a redirected connection was going to: every MCP event
	// carries them, as the exchange's own event does.
	Door        string
	OriginalDst string
}

// ruleNoUpstream names the refusal of an exchange no door bound an
// upstream to.
const ruleNoUpstream = "builtin:mcp-no-upstream"

// newEvent starts an MCP event about x: every field x knows of, so that
// no event of the guard leaves out where its exchange came from.
func (g *Guard) newEvent(x *Exchange) *audit.Event {
	return &audit.Event{ID: g.Log.NewID(), Parent: x.Parent, Time: g.now(), Kind: "mcp", Agent: x.Agent, Client: x.Client,
		Host: x.Host, Port: x.Port, Door: x.Door, OriginalDst: x.OriginalDst}
}

// stateServer names the server in the state store: its policy name, or on
// a host no servers entry names, "?" and the destination (no policy name
// has a "?"), so that the sessions and requests in flight of unnamed
// servers are kept, and kept apart by where they go.
func (x *Exchange) stateServer() string {
	if x.Server != "" {
		return x.Server
	}
	return "?" + net.JoinHostPort(x.Host, strconv.Itoa(int(x.Port)))
}

// Governed reports whether the policy governs x's destination: a host
// named by mcp.servers, where an exchange that is not MCP is refused.
func (x *Exchange) Governed() bool { return x.Server != "" }

// Serve runs one exchange: r is the client's request, w writes the answer
// in the framing the client waits for, and x.Upstream sends on what
// passes. Serve returns when the exchange is over.
func (g *Guard) Serve(w http.ResponseWriter, r *http.Request, x Exchange) {
	up := x.Upstream
	if up == nil {
		// No way upstream was bound: nothing can be forwarded, so
		// nothing is read as if it could be.
		g.logRefusal(&x, ruleNoUpstream, "the door bound no upstream to the exchange", http.StatusBadGateway)
		writeJSONError(w, http.StatusBadGateway, nil, wire.CodeInternalError, "agentg: no upstream for this MCP exchange", map[string]any{"rule": ruleNoUpstream})
		return
	}
	set := x.Engine.MCP().MCPSettings
	// Responses must come back readable: MCP's messages are small, and a
	// compressed answer could not be checked.
	r.Header.Del("Accept-Encoding")
	g.sawServer(&x, store.ServerSighting{}, "")
	if wire.IsUpgrade(r.Header) && x.Governed() {
		if !upgradeAllowed(&x) {
			g.refuseUpgrade(w, &x, r.Header)
			return
		}
		up.ServeHTTP(w, r) // the policy lets it through, unread
		return
	}
	switch r.Method {
	case http.MethodPost:
		g.servePost(w, r, &x, set)
	case http.MethodGet:
		if u := governedURL(&x, r.URL); u != nil {
			g.logRefusal(&x, ruleRedact, "refused a GET: "+u.Error(), http.StatusForbidden)
			writeJSONError(w, http.StatusForbidden, nil, wire.CodeDenied, "agentg: "+u.Error(), map[string]any{"rule": ruleRedact})
			return
		}
		g.serveOther(w, r, &x, set.MaxMessage, func() { g.serveStream(w, r, &x, set) })
	default:
		// DELETE ends a session; HEAD and OPTIONS carry no message;
		// serveOther (nonpost.go) refuses what could carry one.
		g.serveOther(w, r, &x, set.MaxMessage, func() { up.ServeHTTP(w, r) })
	}
}

// servePost reads the client's messages, decides them, and forwards what
// may pass.
func (g *Guard) servePost(w http.ResponseWriter, r *http.Request, x *Exchange, set rules.MCPSettings) {
	body, err := wire.ReadBody(r.Body, r.Header.Get("Content-Encoding"), set.MaxMessage)
	r.Body.Close()
	if err != nil {
		g.refuseBody(w, x, http.StatusBadRequest, err)
		return
	}
	ct, ctErr := wire.ContentType(r.Header)
	if ctErr != nil || ct.Kind != wire.ContentJSON || !ct.UTF8() {
		if !x.Governed() && !wire.MayBeJSONRPC(body, ct.Charset) {
			forwardBody(w, r, body, x.Upstream) // not MCP, and not governed
			return
		}
		g.refuseBody(w, x, http.StatusUnsupportedMediaType, wire.ErrMediaType(r.Header, ct, ctErr))
		return
	}
	parsed, err := wire.Parse(body, wire.Limits{MaxMessage: int(set.MaxMessage)})
	if err != nil {
		if !x.Governed() && !wire.MayBeJSONRPC(body, ct.Charset) {
			forwardBody(w, r, body, x.Upstream)
			return
		}
		g.refuseBody(w, x, http.StatusBadRequest, err)
		return
	}
	// What goes on says what agentg read: UTF-8 JSON, whatever the
	// header that came (a +json type, a charset, its spelling).
	r.Header.Set("Content-Type", wire.ContentTypeJSON)
	if !x.Governed() {
		if d := unknownServer(set); !d.Allowed() {
			ex := g.newExchange(r, x, set)
			ex.refuseAll(w, parsed, http.StatusForbidden, wire.CodeDenied, d.Rule,
				"MCP to a server the policy does not name ("+x.URL+")")
			return
		}
	}
	ex := g.newExchange(r, x, set)
	if u := urlUnredactable(x, r.URL); u != nil {
		ex.refuseURL(w, parsed, u)
		return
	}
	ex.serve(w, r, parsed, body)
}

// forwardBody forwards a request whose body was read, unchanged but for
// the encoding undone.
func forwardBody(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) {
	r.Header.Del("Content-Encoding")
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	next.ServeHTTP(w, r)
}

// refuseBody answers a request whose body cannot be read as MCP with a
// JSON-RPC error (id null: there is no message to take one from) and an
// event.
func (g *Guard) refuseBody(w http.ResponseWriter, x *Exchange, status int, err error) {
	code, msg := wire.CodeParseError, err.Error()
	if pe, ok := err.(*wire.ParseError); ok {
		code = pe.Code
	}
	if err == wire.ErrTooLarge {
		code, status = wire.CodeInvalidRequest, http.StatusRequestEntityTooLarge
	}
	g.logRefusal(x, "builtin:mcp-parse", msg, status)
	writeJSONError(w, status, nil, code, "agentg: "+msg, map[string]any{"rule": "builtin:mcp-parse"})
}
