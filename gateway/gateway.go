package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/rules"
)

// Door is the door value of the gateway's events.
const Door = "gateway"

// Path is the one URL the gateway serves MCP at.
const Path = "/mcp"

// Config is what a Gateway needs.
type Config struct {
	// Policy is the policy in force, read at every request (reloads take
	// effect on the next one).
	Policy func() *rules.Engine
	// Guard decides every message to and from every upstream.
	Guard *mcp.Guard
	Log   *audit.Logger
	// Send, when set, sends what the guard lets through to a server, as
	// the request of the agent who (its session's) to the entry server:
	// internal/app gives (*proxy.Server).Send, which decides it as that
	// agent and attaches the credentials that agent's request to that
	// server would get through the proxy. It writes the answer to w, and
	// returns why agentg answered instead (nil: the server answered).
	Send func(w http.ResponseWriter, r *http.Request, who Who, server string) error
	// Client sends what the guard lets through to a server when Send is
	// nil, with no credential; nil: http.DefaultClient's transport.
	Client *http.Client
	// Auth names the agent behind each request; nil: ByAddress.
	Auth Authenticator
	// Dial opens upstream sessions; nil: Streamable HTTP through the
	// guard (HTTPDialer).
	Dial Dialer
	// Forward, when set and when it returns a handler for a server with
	// an endpoint, is that server's way upstream behind the guard instead
	// of HTTP to its endpoint: what the guard lets through is served by
	// it, in process.
	Forward func(rules.ServerBinding) http.Handler
	// Children runs the policy's command servers (agentg's supervisor);
	// nil: a command server's sessions fail to open. Each is served over
	// stdio through the guard's stream session (stdio.go, stdiomux.go).
	Children Children
	// Version is said in the gateway's serverInfo.
	Version string
	// SessionTimeout closes a client session idle this long; 0: 30m.
	SessionTimeout time.Duration
	// ListFresh is how long a server's list, fetched for one agent,
	// answers that agent's other sessions (listcache.go); 0:
	// DefaultListFresh; negative: every session asks every time.
	ListFresh time.Duration
}

// Gateway is the MCP gateway door. It is an http.Handler.
type Gateway struct {
	cfg       Config
	client    *http.Client
	stateful  http.Handler // 2025-03-26 … 2025-11-25, with sessions
	stateless http.Handler // 2026-07-28
	legacy    http.Handler // 2024-11-05 HTTP+SSE
	lists     *listCache
	// bufs are forward's copy buffers (guardhttp.go): one per answer in
	// flight, not one allocated per call.
	bufs sync.Pool
	// The tools/call fast path (fastcall.go): client sessions by id,
	// the calls it carried, the ids it gives them upstream.
	fast      sync.Map // string -> *fastEntry
	fastCalls atomic.Int64
	fastIDs   atomic.Uint64

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
	byAgent  map[string]*session // the stateless revision's sessions, one per agent

	stdio stdioServers        // the command servers' multiplexers
	byID  map[string]*session // the stateful sessions by the id the client sends (tasks.go)
}

type whoKey struct{}

// New builds a Gateway; it serves once mounted on a listener.
func New(cfg Config) (*Gateway, error) {
	if cfg.Policy == nil || cfg.Guard == nil || cfg.Log == nil {
		return nil, errors.New("gateway: a policy, a guard and a log are required")
	}
	if cfg.Auth == nil {
		cfg.Auth = ByAddress{}
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 30 * time.Minute
	}
	if cfg.ListFresh == 0 {
		cfg.ListFresh = DefaultListFresh
	}
	g := &Gateway{cfg: cfg, client: cfg.Client, sessions: map[*session]struct{}{}, byAgent: map[string]*session{}, byID: map[string]*session{},
		lists: newListCache(cfg.ListFresh)}
	g.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	if g.client == nil {
		g.client = &http.Client{}
	}
	if cfg.Dial == nil {
		g.cfg.Dial = HTTPDialer{}
	}
	quiet := slog.New(slog.DiscardHandler)
	g.stateful = sdk.NewStreamableHTTPHandler(g.newSession, &sdk.StreamableHTTPOptions{
		// The SDK's DNS rebinding guard stays on: a gateway on loopback
		// refuses a request whose Host names anything else, so a web page
		// cannot reach it through a name that resolves to 127.0.0.1.
		Logger: quiet, SessionTimeout: cfg.SessionTimeout,
	})
	g.stateless = sdk.NewStreamableHTTPHandler(g.agentSession, &sdk.StreamableHTTPOptions{
		Logger: quiet, Stateless: true,
	})
	g.legacy = sdk.NewSSEHandler(g.newSession, &sdk.SSEOptions{})
	return g, nil
}

func (g *Gateway) engine() *rules.Engine { return g.cfg.Policy() }

// ServeHTTP serves the gateway's one URL: the agent is authenticated
// first, and then the request goes to the transport its revision speaks.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		http.Error(w, "agentg gateway: MCP is served at "+Path, http.StatusNotFound)
		return
	}
	who, err := g.cfg.Auth.Authenticate(r, g.engine())
	if err != nil {
		g.refused(r, err)
		w.Header().Set("WWW-Authenticate", g.cfg.Auth.Challenge())
		http.Error(w, "agentg gateway: "+err.Error(), http.StatusUnauthorized)
		return
	}
	// The request's own event, and its id where the handlers read it:
	// the events of the calls it carries name it as their parent.
	id, start := g.cfg.Log.NewID(), time.Now()
	r.Header.Set(RequestHeader, id)
	sw := &statusWriter{ResponseWriter: w}
	defer func() { g.requestEvent(id, who, r, sw.status, start) }()
	w = sw
	r = r.WithContext(context.WithValue(r.Context(), whoKey{}, who))
	switch {
	case r.URL.Query().Has("sessionid"):
		if r.Method == http.MethodPost {
			r = markLegacy(r, id) // its handler sees no header
		}
		g.legacy.ServeHTTP(w, r) // a 2024-11-05 session's POST
	case r.Header.Get("MCP-Protocol-Version") >= "2026-07-28":
		if g.fastCall(w, r) {
			return
		}
		g.stateless.ServeHTTP(w, r)
	case r.Method == http.MethodGet && r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("MCP-Protocol-Version") == "":
		// A GET without a session: a 2024-11-05 client opening its
		// stream (a Streamable HTTP client's GET always names its session).
		g.legacy.ServeHTTP(w, r)
	case g.serveTask(w, r, who):
		// A 2025-11-25 task request, which the SDK does not serve.
	default:
		if g.fastCall(w, r) {
			return
		}
		g.serveStateful(w, r)
	}
}

func whoOf(r *http.Request) Who {
	who, _ := r.Context().Value(whoKey{}).(Who)
	return who
}

// newSession starts a client session (a stateful revision's, or a
// legacy stream's): the SDK calls it once per session.
func (g *Gateway) newSession(r *http.Request) *sdk.Server {
	s := newSession(g, whoOf(r), false)
	if !g.track(s) {
		return nil
	}
	return s.srv
}

// agentSession is the 2026-07-28 revision's session: it has none, so the
// upstream sessions and the catalogue are kept per agent.
func (g *Gateway) agentSession(r *http.Request) *sdk.Server {
	who := whoOf(r)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	s := g.byAgent[who.Agent]
	if s == nil {
		s = newSession(g, who, true)
		g.byAgent[who.Agent] = s
		g.sessions[s] = struct{}{}
		g.indexSession(agentKey(who.Agent), s)
	}
	return s.srv
}

func (g *Gateway) track(s *session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.sessions[s] = struct{}{}
	return true
}

func (g *Gateway) forget(s *session) {
	g.mu.Lock()
	delete(g.sessions, s)
	if ss := s.client(); ss != nil && g.byID[ss.ID()] == s {
		delete(g.byID, ss.ID())
	}
	g.mu.Unlock()
}

// bindID records the client's session id of s.
func (g *Gateway) bindID(id string, s *session) {
	if id == "" {
		return
	}
	g.mu.Lock()
	if !g.closed {
		g.byID[id] = s
	}
	g.mu.Unlock()
}

// sessionByID is the stateful session the client names, if any.
func (g *Gateway) sessionByID(id string) *session {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byID[id]
}

// Close closes every client session and, with them, their upstream
// sessions (DELETE where the revision has sessions).
func (g *Gateway) Close() {
	g.mu.Lock()
	g.closed = true
	ss := make([]*session, 0, len(g.sessions))
	for s := range g.sessions {
		ss = append(ss, s)
	}
	g.sessions, g.byAgent, g.byID = map[*session]struct{}{}, map[string]*session{}, map[string]*session{}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() { defer wg.Done(); s.close() }()
	}
	wg.Wait()
}
