package proxy

import (
	"context"
	"net/http"
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
	start  time.Time
	client string
	method string
	scheme string
	path   string

	agent    string
	host     addr.Host
	decision rules.Decision
	ips      []netip.Addr // addresses that passed the IP check, in dial order

	mu     sync.Mutex // guards what the dialer and the copier write late
	dialed netip.Addr
	status int
	err    string

	tls        string // "intercepted" inside a terminated tunnel
	tlsVersion string // upstream TLS version
	alpn       string // upstream ALPN

	up, down atomic.Int64
	tunnel   atomic.Bool // a tunnel owns the event from here on
	emitted  atomic.Bool
}

type flowKey struct{}

func newFlow(r *http.Request) *flow {
	return &flow{start: time.Now(), client: r.RemoteAddr, method: r.Method}
}

func withFlow(ctx context.Context, f *flow) context.Context {
	return context.WithValue(ctx, flowKey{}, f)
}

func flowFrom(ctx context.Context) *flow {
	f, _ := ctx.Value(flowKey{}).(*flow)
	return f
}

func (f *flow) handedToTunnel() bool { return f.tunnel.Load() }

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

// emit writes the flow's event once, however many paths reach it.
func (s *Server) emit(f *flow) {
	if f.emitted.Swap(true) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := "http"
	if f.method == http.MethodConnect {
		kind = "connect"
	}
	e := audit.Event{
		Time:       f.start,
		Kind:       kind,
		Agent:      f.agent,
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
	s.cfg.Log.Log(&e)
}

// logMalformed records a request net/http refused before any handler saw
// it (malformed request line, oversized head, bad header).
func (s *Server) logMalformed(client string, status int, reason string) {
	s.cfg.Log.Log(&audit.Event{
		Time:     time.Now(),
		Kind:     "http",
		Client:   client,
		Decision: "deny",
		Rule:     "request",
		Reason:   "malformed request: " + reason,
		Status:   status,
	})
}
