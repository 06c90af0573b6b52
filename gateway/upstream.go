package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/rules"
)

// Dialer opens the transport of one upstream session: the way the
// gateway's SDK client reaches one server for one client session. The
// HTTP one (HTTPDialer) sends every request through the guard. A
// command server's sessions are the stdio multiplexer's (stdio.go),
// whatever Config.Dial is; a Dialer of its own must hand every message
// to the guard in the same way.
type Dialer interface {
	Dial(ctx context.Context, u Upstream) (sdk.Transport, error)
}

// Upstream is what a Dialer is told about the session to open.
type Upstream struct {
	Server rules.ServerBinding
	Who    Who
	// HTTP is a client whose every request the guard serves, as the
	// agent's own through the proxy would be, before it goes to
	// Server.Endpoint; nil for a command server (no endpoint).
	HTTP *http.Client
	// Legacy says the server speaks only the 2024-11-05 HTTP+SSE
	// transport: it refused a Streamable HTTP initialize as an old
	// server does (legacy.go).
	Legacy bool
}

// HTTPDialer opens Streamable HTTP sessions (every revision the SDK
// client negotiates: 2026-07-28 where the server speaks it, else the
// newest initialize revision it answers).
type HTTPDialer struct{}

// Dial implements Dialer.
func (HTTPDialer) Dial(_ context.Context, u Upstream) (sdk.Transport, error) {
	if u.Server.Endpoint == "" {
		return nil, fmt.Errorf("mcp server %s has no endpoint", u.Server.Name)
	}
	if u.Legacy {
		return &legacyTransport{sdk.SSEClientTransport{Endpoint: u.Server.Endpoint, HTTPClient: u.HTTP}}, nil
	}
	// A lost stream is resumed as the SDK does (GET with Last-Event-ID):
	// through u.HTTP, so the guard reads the resumed stream too.
	return &sdk.StreamableClientTransport{Endpoint: u.Server.Endpoint, HTTPClient: u.HTTP}, nil
}

// upstream is one client session's session with one server, opened on
// first use and opened again when the server has forgotten it.
type upstream struct {
	s    *session
	bind rules.ServerBinding

	mu     sync.Mutex
	cs     *sdk.ClientSession
	tr     *guardTransport // cs's way through the guard; the fast path's too
	closed bool
	legacy bool // the server answered as a 2024-11-05 one: open it so
}

// conn returns the open session, opening it within ctx if need be.
func (u *upstream) conn(ctx context.Context) (*sdk.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errors.New("the client's session is closed")
	}
	if u.cs != nil {
		return u.cs, nil
	}
	cs, tr, probe, err := u.connect(ctx, u.legacy)
	if err != nil && !u.legacy && probe != nil && probe.old() && ctx.Err() == nil {
		// Refused as an old server refuses: the spec's fallback to the
		// 2024-11-05 transport.
		var err2 error
		if cs, tr, _, err2 = u.connect(ctx, true); err2 != nil {
			return nil, fmt.Errorf("%w; as a 2024-11-05 HTTP+SSE server: %w", err, err2)
		}
		u.legacy, err = true, nil
		u.s.g.spokeLegacy(u.s.who, u.bind.Name)
	}
	if err != nil {
		return nil, err
	}
	u.cs, u.tr = cs, tr
	// A session that ends on its own (the server forgot it, its stream
	// failed for good) is forgotten, so the next use opens a new one.
	go func() {
		cs.Wait()
		u.mu.Lock()
		if u.cs == cs {
			u.cs = nil
		}
		u.mu.Unlock()
	}()
	if lvl := u.s.logLevel(); lvl != "" {
		cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: lvl})
	}
	return cs, nil
}

// connect opens a session in Streamable HTTP, or in the 2024-11-05
// transport if legacy; the probe says how the server answered the POSTs.
func (u *upstream) connect(ctx context.Context, legacy bool) (*sdk.ClientSession, *guardTransport, *postProbe, error) {
	var hc *http.Client
	var tr *guardTransport // nil for a command server: stdio.go
	var probe *postProbe   // nil for a command server
	if u.bind.Endpoint != "" {
		var err error
		if tr, err = newGuardTransport(u.s.g, u.bind, u.s.who); err != nil {
			return nil, nil, nil, err
		}
		probe = &postProbe{next: tr}
		hc = &http.Client{Transport: probe}
	}
	t, err := u.s.g.dialerFor(u.bind).Dial(ctx, Upstream{Server: u.bind, Who: u.s.who, HTTP: hc, Legacy: legacy})
	if err != nil {
		return nil, nil, probe, err
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "agentg-gateway", Version: u.s.g.cfg.Version}, u.s.clientOptions(u.bind.Name))
	c.AddReceivingMiddleware(u.s.serverRequests(u.bind.Name))
	// The session outlives the request that opened it: only the opening
	// is bounded by ctx.
	cs, err := c.Connect(ctx, t, nil)
	if err != nil {
		return nil, nil, probe, fmt.Errorf("mcp server %s: open a session: %w", u.bind.Name, err)
	}
	return cs, tr, probe, nil
}

// detach is ctx's cancellation and deadline without its values: the
// client's request context carries the SDK server's state (its protocol
// revision among it), which the SDK client would read as its own and
// send upstream. Only the gateway's own inbound value is kept.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	base := context.Background()
	if in := inboundOf(ctx); in != nil {
		base = context.WithValue(base, inboundKey{}, in)
	}
	d, cancel := context.WithCancel(base)
	if dl, ok := ctx.Deadline(); ok {
		var c2 context.CancelFunc
		d, c2 = context.WithDeadline(d, dl)
		c1 := cancel
		cancel = func() { c2(); c1() }
	}
	stop := context.AfterFunc(ctx, cancel)
	return d, func() { stop(); cancel() }
}

// do runs fn on the session. A server that answers 404 to the session
// (it expired, or the server restarted) gets a new session and fn once
// more: the request never reached a session, so nothing ran twice.
func (u *upstream) do(ctx context.Context, fn func(context.Context, *sdk.ClientSession) error) error {
	ctx, cancel := detach(ctx)
	defer cancel()
	cs, err := u.conn(ctx)
	if err != nil {
		return err
	}
	err = fn(ctx, cs)
	if !errors.Is(err, sdk.ErrSessionMissing) && !errors.Is(err, sdk.ErrConnectionClosed) {
		return err
	}
	u.reset(cs)
	if cs, err = u.conn(ctx); err != nil {
		return err
	}
	return fn(ctx, cs)
}

// reset forgets cs, if it is still the session, so the next use opens
// a new one.
func (u *upstream) reset(cs *sdk.ClientSession) {
	u.mu.Lock()
	if u.cs == cs {
		u.cs = nil
	}
	u.mu.Unlock()
	cs.Close()
}

// open reports whether the session is open now, and returns it.
func (u *upstream) open() *sdk.ClientSession {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.cs
}

// close ends the session (a DELETE where the revision has sessions).
func (u *upstream) close() {
	u.mu.Lock()
	cs := u.cs
	u.cs, u.closed = nil, true
	u.mu.Unlock()
	if cs != nil {
		cs.Close()
	}
}
