package proxy

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// flow is one request or tunnel on its way through the proxy: who sent it,
// where it goes, what the policy said and what happened. It becomes one
// audit event.
type flow struct {
	id     string
	parent string // the tunnel a request arrived in
	kind   string // "http" or "connect"
	start  time.Time
	client string
	method string
	scheme string
	path   string

	agent    string
	host     addr.Host
	decision rules.Decision
	ips      []netip.Addr // addresses that passed the IP check, in dial order

	mu     sync.Mutex // guards what the dialer, the copier and a reload write late
	dialed netip.Addr
	status int
	err    string

	tls        string // "intercepted" inside a terminated tunnel
	tlsVersion string // upstream TLS version
	alpn       string // upstream ALPN

	up, down atomic.Int64
	emitted  atomic.Bool
	meter    *byteMeter // the bytes quotas its bodies are charged to; nil: none

	tun *tunnel // a CONNECT admitted as a tunnel that has not started yet

	openID string // the tunnel-open event's id, once written (log.go)

	approval *audit.Approval // the approval that decided a held request

	door    string         // "transparent" for the transparent listener; "" for the explicit one
	origDst netip.AddrPort // transparent: where the connection was going

	binding    string // the credential binding that attached a secret (inject.go)
	credential string // the names of the secrets it attached, never a value
	// clientCert is the binding's client certificate, which the forwarder
	// presents on connections pooled for that binding alone (forward.go).
	clientCert *rules.ClientCert
	swapped    string      // the secrets whose placeholders were swapped (leak.go)
	prefix     *prefixBody // the body's first part the leak guard read, done when the exchange ends (leak.go)
	// oauth is the oauth binding that matched (oauth.go), and the
	// credentials section it is of; nil: none.
	oauth      *rules.Binding
	oauthCreds *rules.Credentials

	// toServer is the mcp servers entry a door of agentg's own sends this
	// request to (the gateway, send.go): server: bindings match by it.
	toServer string
	// subject is the agent's own identity-provider token a door proved
	// it with, for a token_exchange binding (exchange_token.go).
	subject string
	// refused is agentg's answer written instead of the upstream's
	// (writeRefusal), for Send to report.
	refused *refusal

	server    string // the MCP server agentg started whose own egress this is (servers.go)
	causedBy  string // the event id of that server's tool call in flight
	causeTool string // and its tool
}

type flowKey struct{}

func (e *events) newFlow(kind, client, method string) *flow {
	return &flow{id: e.log.NewID(), kind: kind, start: time.Now(), client: client, method: method}
}

// child is a request inside the tunnel f: it inherits who and where.
func (e *events) child(f *flow, method string) *flow {
	c := e.newFlow("http", f.client, method)
	c.parent, c.agent, c.host, c.ips = f.id, f.agent, f.host, f.ips
	c.door, c.origDst = f.door, f.origDst
	c.server, c.causedBy, c.causeTool = f.server, f.causedBy, f.causeTool
	f.mu.Lock()
	c.dialed = f.dialed
	f.mu.Unlock()
	return c
}

func withFlow(ctx context.Context, f *flow) context.Context {
	return context.WithValue(ctx, flowKey{}, f)
}

func flowFrom(ctx context.Context) *flow {
	f, _ := ctx.Value(flowKey{}).(*flow)
	return f
}

func (f *flow) setStatus(code int, err string) {
	f.mu.Lock()
	f.status = code
	if err != "" {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *flow) setDialed(ip netip.Addr) {
	f.mu.Lock()
	f.dialed = ip
	f.mu.Unlock()
}

// deny records a decision made after the flow was first decided (the TLS
// gate, a reload): the event reports it, whatever was allowed before.
func (f *flow) deny(d rules.Decision) {
	f.mu.Lock()
	f.decision = d
	f.mu.Unlock()
}

// emit writes the flow's event once, however many paths reach it.
func (ev *events) emit(f *flow) {
	if f.emitted.Swap(true) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := audit.Event{
		ID:         f.id,
		Parent:     f.parent,
		Opened:     f.openID,
		Time:       f.start,
		Kind:       f.kind,
		Agent:      f.agent,
		Server:     f.server,
		CausedBy:   f.causedBy,
		Client:     f.client,
		Method:     f.method,
		Scheme:     f.scheme,
		Host:       f.host.Name,
		Port:       f.host.Port,
		Path:       f.path,
		Decision:   f.decision.Outcome(),
		Rule:       f.decision.Rule,
		RuleSource: f.decision.Source,
		Reason:     f.decision.Reason,
		Status:     f.status,
		BytesUp:    f.up.Load(),
		BytesDown:  f.down.Load(),
		Duration:   time.Since(f.start),
		Error:      f.err,
		TLS:        f.tls,
		TLSVersion: f.tlsVersion,
		ALPN:       f.alpn,
		Door:       f.door,
		Approval:   f.approval,
		Binding:    f.binding,
		Credential: joinNames(f.credential, f.swapped),
	}
	if f.origDst.IsValid() {
		e.OriginalDst = f.origDst.String()
	}
	if f.dialed.IsValid() {
		e.IP = f.dialed.String()
	}
	if e.Rule == "" {
		// Refused before the policy was asked (bad request, bad
		// credentials): the event still says why.
		e.Decision = "deny"
		e.Rule = "request"
	}
	ev.log.Log(&e)
}

// logMalformed records a request head agentg refused before any handler
// could see it (malformed request line, oversized head, bad header); parent
// is the tunnel it arrived in, if any.
func (e *events) logMalformed(parent, client string, status int, reason string) {
	e.log.Log(&audit.Event{
		ID:       e.log.NewID(),
		Parent:   parent,
		Time:     time.Now(),
		Kind:     "http",
		Client:   client,
		Decision: "deny",
		Rule:     "request",
		Reason:   "malformed request: " + reason,
		Status:   status,
	})
}
