// Package proxy holds agentg's network doors: the explicit forward proxy
// (HTTP absolute-form requests and CONNECT tunnels, the doors an agent
// reaches through HTTP_PROXY and HTTPS_PROXY) and the transparent
// listener. Every door runs the same pipeline (decide.go): it identifies
// the agent, asks the policy about the destination, admits within the
// caps and quotas, and forwards what is allowed to the exact IP that was
// checked.
//
// The contract: nothing reaches an upstream without a decision from the
// policy, every request or tunnel produces exactly one audit event, a
// destination that cannot be parsed, resolved or checked is refused (fail
// closed), and the address dialed is always one the policy saw. The proxy
// knows nothing of rule syntax (package rules) or of MCP (package dissect).
// github.com/elazarl/goproxy is the CONNECT front and nothing else
// (front.go: it reads the CONNECT, asks onConnect, writes refusals,
// hijacks); every byte after the CONNECT, the exchange path and the one
// forwarder are agentg's own (see docs/architecture.md for why).
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/creds/oauth"
	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/mitm"
	"github.com/agentg/agentg/rules"
)

// Policy hands out the policy in force; *rules.Live implements it, and a
// reload swaps what it returns without disturbing requests in flight.
type Policy interface {
	Engine() *rules.Engine
}

// Resolver looks names up; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config is what a Server needs. Policy and Log are required.
type Config struct {
	Policy   Policy
	Log      *audit.Logger
	Resolver Resolver // default net.DefaultResolver

	// Servers proves the proxy credentials of the MCP servers agentg
	// started, and Causes attributes their egress to tool calls
	// (servers.go); nil: no server identity is accepted.
	Servers ServerIdentities
	Causes  EgressCauses
	// Turns keeps each agent's last model turns as the proxy reads them,
	// for the MCP guard to tie tool calls to (its Guard.Turns); nil: the
	// proxy keeps its own.
	Turns *llm.Recent

	// Issuer signs the leaves for intercepted tunnels; without it a
	// tunnel the policy says to intercept is refused.
	Issuer *certs.Issuer
	// UpstreamRoots verifies upstream certificates of intercepted
	// tunnels; nil means the system roots.
	UpstreamRoots *x509.CertPool

	DialTimeout    time.Duration // per address tried; default 10s
	MaxHeaderBytes int           // default 64 KiB; larger heads get 431, on every door and inside tunnels
	IdleTimeout    time.Duration // client keep-alive; default 2m

	// ReadHeaderTimeout bounds the wait for a request's head, on every
	// door and inside tunnels; default 30s.
	ReadHeaderTimeout time.Duration
	// BodyIdleTimeout bounds each read of a request body: a body that
	// sends nothing for this long is given up (a long upload that keeps
	// sending is never cut); default 60s. DrainTimeout is how long an
	// exchange that answered without reading its body waits for the rest
	// of it (at most 256 KiB) to keep the connection; default 500ms.
	// Either way the answer is sent first (body.go).
	BodyIdleTimeout time.Duration
	DrainTimeout    time.Duration

	// FirstBytesTimeout bounds the wait for a tunnel's first bytes (the
	// ClientHello or request head the gate must see); default 10s.
	FirstBytesTimeout time.Duration
	// TunnelIdleTimeout closes a tunnel in which neither side has sent a
	// byte for this long; default 5m. A stream that keeps sending (an SSE
	// stream with keep-alive comments) is never idle.
	TunnelIdleTimeout time.Duration
	// MaxTunnels caps open tunnels in total, MaxTunnelsPerAgent per agent;
	// past a cap a CONNECT gets 503 and an event. Defaults 10000 and 1000;
	// negative means no cap.
	MaxTunnels         int
	MaxTunnelsPerAgent int

	// Quotas holds the buckets of the policy's quotas; nil: a set of its
	// own. Servers that share one share their quotas.
	Quotas *limit.Quotas

	// MCP dissects the exchanges that are Model Context Protocol; nil
	// leaves every exchange undissected (and a host the policy's
	// mcp.servers names is then refused, never passed unread).
	MCP *mcp.Guard
	// Approvals holds the requests an http approve rule covers until a
	// person decides (approve.go); nil denies them.
	Approvals *approval.Broker
	// Leaks is the leak guard (leak.go): every value agentg holds, looked
	// for in what agents send. The proxy points it at each policy load's
	// secrets. nil: a guard of the policy's secrets only (no runtime
	// values).
	Leaks *creds.Guard
	// OAuth is the OAuth client of the policy's oauth bindings
	// (creds/oauth); nil refuses the requests they match.
	OAuth *oauth.Broker

	// Bindings are the DNS filter's IP→name bindings: which names it
	// recently resolved to an address for an agent. The transparent
	// listener takes them as proof that a name agrees with a
	// connection's original destination, and opens raw TCP to an
	// address bound to an allowed name. nil: no bindings.
	Bindings NameBindings
	// Mark is set (SO_MARK) on every connection and DNS query agentg
	// makes, so that the rules redirecting agents to the transparent
	// listener let agentg's own traffic pass; 0 marks nothing. Linux
	// only, and it needs CAP_NET_ADMIN.
	Mark int
	// ServerFirstWait is how long the transparent listener waits for a
	// client's first bytes on a connection to an address raw TCP may
	// reach (a CIDR rule or a binding opens it) before it takes the
	// protocol for one where the server speaks first (SMTP, MySQL) and
	// connects; default 500ms. Elsewhere it waits FirstBytesTimeout.
	ServerFirstWait time.Duration
	// HeldValue, when set, is told every value agentg obtains at runtime
	// and attaches to requests (a token issued by token exchange), under
	// a name of its own (HeldName): the leak guard must know it like a
	// secret. It must be quick; it may be called concurrently.
	HeldValue func(name, value string)
}

// NameBindings answers which names the DNS filter handed ip out for, to
// agent, recently; the DNS filter's bindings implement it.
type NameBindings interface {
	NamesFor(agent string, ip netip.Addr) []string
}

// Server is agentg's proxy: the doors and what they share. It composes
// one part per job, so that each can be read (and tested) on its own:
//
//   - explicit: the explicit listener's door (connect.go, front.go);
//   - transparent: the transparent listener's door (transparent.go);
//   - pipe: the door pipeline every door runs: who, decide, admit
//     (decide.go, quota.go);
//   - tunnels: the open tunnels, their caps and reload (tunnels.go); the
//     tunnel itself and its relay are tunnel.go and relay.go;
//   - dial: the dialer of checked addresses, agentg's own addresses and
//     the open outbound connections (outbound.go, self.go);
//   - events: the one writer of the proxy's audit events (log.go, flow.go);
//   - the exchange path and its one forwarder (exchange.go, forward.go).
//
// Create it with New, run it with Serve, stop it with Shutdown.
type Server struct {
	cfg       Config
	fwd       *httputil.ReverseProxy // the one forwarder
	upstreams *transportPool
	mitm      *mitm.Interceptor // nil without an Issuer
	inside    serving           // the limits inside tunnels (serveconn.go)
	hs        *http.Server
	log       *zerolog.Logger

	explicit    *explicitDoor
	transparent *transparentDoor
	pipe        *pipeline
	tunnels     *tunnelSet
	dial        *checkedDialer
	events      *events

	governed  governedDNS  // DNS answers for governed MCP names (governed.go)
	own       ownClient    // agentg's own checked client (client.go)
	exchanged exchanges    // tokens issued by token exchange (exchange_token.go)
	leaks     *creds.Guard // the leak guard (leak.go)
	turns     *llm.Recent  // each agent's last model turns (llm.go)
}

// reloadNotifier is what a Policy implements when it can say that it was
// reloaded, so that open tunnels are re-decided; *rules.Live does.
type reloadNotifier interface {
	OnReload(func(*rules.Engine))
}

var _ reloadNotifier = (*rules.Live)(nil)

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Policy == nil || cfg.Log == nil {
		return nil, errors.New("proxy: Config.Policy and Config.Log are required")
	}
	if cfg.Mark != 0 && !markSupported {
		return nil, errors.New("proxy: Config.Mark needs Linux (SO_MARK)")
	}
	if cfg.Mark < 0 {
		return nil, fmt.Errorf("proxy: Config.Mark %d is negative", cfg.Mark)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
		if cfg.Mark != 0 {
			cfg.Resolver = markedResolver(cfg.Mark)
		}
	}
	setDefault(&cfg.ServerFirstWait, 500*time.Millisecond)
	setDefault(&cfg.DialTimeout, 10*time.Second)
	setDefault(&cfg.MaxHeaderBytes, 64<<10)
	setDefault(&cfg.IdleTimeout, 2*time.Minute)
	setDefault(&cfg.ReadHeaderTimeout, 30*time.Second)
	setDefault(&cfg.BodyIdleTimeout, time.Minute)
	setDefault(&cfg.DrainTimeout, 500*time.Millisecond)
	setDefault(&cfg.FirstBytesTimeout, 10*time.Second)
	setDefault(&cfg.TunnelIdleTimeout, 5*time.Minute)
	if cfg.MaxTunnels == 0 {
		cfg.MaxTunnels = 10000
	}
	if cfg.MaxTunnelsPerAgent == 0 {
		cfg.MaxTunnelsPerAgent = 1000
	}
	s := &Server{cfg: cfg, log: cfg.Log.Zerolog(), tunnels: newTunnelSet(), events: &events{log: cfg.Log},
		dial: &checkedDialer{timeout: cfg.DialTimeout, mark: cfg.Mark}, leaks: cfg.Leaks}
	if s.leaks == nil {
		s.leaks = creds.NewGuard(nil)
	}
	if s.turns = cfg.Turns; s.turns == nil {
		s.turns = &llm.Recent{}
	}
	s.useCredentials(cfg.Policy.Engine())
	quotas := cfg.Quotas
	if quotas == nil {
		quotas = limit.NewQuotas(limit.Options{})
	}
	s.pipe = &pipeline{policy: cfg.Policy, resolver: cfg.Resolver, lookupTimeout: cfg.DialTimeout, dial: s.dial,
		bindings: cfg.Bindings, quotas: quotas, tunnels: s.tunnels, servers: cfg.Servers, causes: cfg.Causes,
		maxTunnels: cfg.MaxTunnels, maxTunnelsPerAgent: cfg.MaxTunnelsPerAgent, leaks: s.leaks}

	plain := &http.Transport{
		Proxy:                 nil, // never chain through whatever HTTP_PROXY agentg itself was started with
		DialContext:           s.dial.dialChecked,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // the client's Accept-Encoding and the body pass through untouched
	}
	s.inside = serving{idleTimeout: cfg.IdleTimeout, readHeaderTimeout: cfg.ReadHeaderTimeout,
		maxHeaderBytes: cfg.MaxHeaderBytes, errorLog: newStdLogger(s.log)}
	var tlsTmpl *http.Transport
	if cfg.Issuer != nil {
		var err error
		s.mitm, err = mitm.New(mitm.Config{
			Issuer:           cfg.Issuer,
			Dial:             s.dial.dialChecked,
			Roots:            cfg.UpstreamRoots,
			HandshakeTimeout: cfg.DialTimeout,
		})
		if err != nil {
			return nil, err
		}
		tlsTmpl = s.mitm.UpstreamTransport()
	} else {
		// No interceptor, but a door of agentg's own may still send https
		// (Send): verified against the same roots.
		tlsTmpl = plain.Clone()
		tlsTmpl.TLSClientConfig = &tls.Config{RootCAs: cfg.UpstreamRoots, MinVersion: tls.VersionTLS12}
		tlsTmpl.ForceAttemptHTTP2 = true
	}
	s.upstreams = newTransportPool(plain, tlsTmpl, 4096)
	s.fwd = s.newForwarder()

	s.explicit = newExplicitDoor(s)
	s.transparent = newTransparentDoor(s)

	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          newStdLogger(s.log),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	if n, ok := cfg.Policy.(reloadNotifier); ok {
		n.OnReload(s.PolicyReloaded)
	}
	return s, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Serve accepts connections on ln until Shutdown. The listener's address
// becomes a destination the proxy refuses, so it cannot be made to loop.
func (s *Server) Serve(ln net.Listener) error {
	s.dial.addSelf(ln.Addr())
	err := s.hs.Serve(trackListener{ln, s})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// trackListener reads every client connection through a Host tracker.
type trackListener struct {
	net.Listener
	s *Server
}

func (l trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	client := c.RemoteAddr().String()
	bad := func(status int, reason string) { l.s.events.logMalformed("", client, status, reason) }
	return newHostTracker(c, l.s.cfg.MaxHeaderBytes, bad, true), nil
}

// ServeHTTP is the explicit listener's door (explicitDoor).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.explicit.ServeHTTP(w, r)
}

// PolicyReloaded re-decides every open tunnel against the policy now in
// force (closing those it denies, each with its event) and drops idle
// upstream connections. A Policy that is a *rules.Live calls it itself.
func (s *Server) PolicyReloaded(eng *rules.Engine) {
	s.useCredentials(eng)
	s.redecide(eng)
	s.CloseIdleConnections()
}

// Shutdown stops accepting, lets requests in flight finish, and waits for
// open tunnels until ctx ends; whatever is still open then is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.transparent.close()
	err := s.hs.Shutdown(ctx)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		open := s.tunnels.snapshot()
		if len(open) == 0 {
			break
		}
		if ctx.Err() != nil {
			for _, t := range open {
				t.close()
			}
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	s.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// CloseIdleConnections drops pooled upstream connections, so that requests
// after a policy reload dial (and are checked) afresh.
func (s *Server) CloseIdleConnections() {
	s.upstreams.closeIdle()
	s.own.closeIdle()
}
