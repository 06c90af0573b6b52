package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// Policy hands out the policy in force; *rules.Live implements it.
type Policy interface {
	Engine() *rules.Engine
}

// MCPState is what the API reads and changes of the MCP state;
// state.Store implements it.
type MCPState interface {
	Snapshot() state.Inventory
	Pins() []state.Pin
	AcceptPin(server, tool string) (state.Pin, error)
}

var _ MCPState = state.Store(nil)

// Config is what a Server needs. Token, Log and Policy are required.
type Config struct {
	Token  string        // the bearer token every request must carry
	Log    *audit.Logger // the events metrics and the stream are made of
	Policy Policy        // the rules /v1/rules lists
	// Reload reloads the policy (POST /v1/policy/reload) and reports the
	// outcome as a reload from any other trigger does (ObserveReload
	// included); nil when there is no file to reload (the embedded
	// default policy).
	Reload func() error
	// MCP is the MCP state; nil answers its endpoints with 503.
	MCP MCPState
	// Approvals is the approvals broker (approvals.go); nil answers its
	// endpoints with 503.
	Approvals Approvals
	// Servers is the gateway's live state of the servers it serves
	// (registry.go); nil: no gateway, every server "not served by the
	// gateway".
	Servers ServerStatus
	// OAuth is the OAuth broker (oauth.go); nil answers its endpoints
	// with 503.
	OAuth  OAuth
	Gauges Gauges

	// StreamBuffer is how many events may wait for one event stream's
	// reader; default 256. MaxStreams caps the streams open at once;
	// default 64.
	StreamBuffer int
	MaxStreams   int
	// MetricsBuffer is how many events may wait for the metrics; default
	// 16384.
	MetricsBuffer int
	// RecentEvents is how many of the newest events GET /v1/events?last=N
	// can replay (recent.go); 0 means DefaultRecentEvents, negative none.
	RecentEvents int
	// ErrorLog receives the HTTP server's errors; nil: discarded.
	ErrorLog interface{ Printf(string, ...any) }

	// ReadHeaderTimeout bounds the wait for a request's head, BodyTimeout
	// for its whole body; MaxConns caps the connections open at once
	// (limits.go). 0 means the Default of each; MaxConns < 0, no cap.
	ReadHeaderTimeout time.Duration
	BodyTimeout       time.Duration
	MaxConns          int
}

// Server is the admin API. Create it with New, run it with Serve (or use
// Handler), stop it with Shutdown.
type Server struct {
	cfg     Config
	token   tokenCheck
	mux     *http.ServeMux
	hs      *http.Server
	metrics *metrics
	sub     *audit.Subscription // the metrics' events, and the recent ones'
	recent  *recentEvents
	streams streamCount
	ready   atomic.Bool
	console console

	done     chan struct{} // closed by Shutdown: streams end, the metrics stop
	stopOnce sync.Once
	stopped  chan struct{} // closed when the metrics goroutine is gone
}

// New builds a Server and starts counting events.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Token == "":
		return nil, errors.New("admin: no token")
	case cfg.Log == nil || cfg.Policy == nil:
		return nil, errors.New("admin: Config.Log and Config.Policy are required")
	}
	if cfg.StreamBuffer <= 0 {
		cfg.StreamBuffer = 256
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 64
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MetricsBuffer <= 0 {
		cfg.MetricsBuffer = 16384
	}
	switch {
	case cfg.RecentEvents == 0:
		cfg.RecentEvents = DefaultRecentEvents
	case cfg.RecentEvents < 0:
		cfg.RecentEvents = 0
	}
	s := &Server{cfg: cfg, token: newTokenCheck(cfg.Token), mux: http.NewServeMux(),
		done: make(chan struct{}), stopped: make(chan struct{}), console: newConsole(), recent: newRecentEvents(cfg.RecentEvents)}
	s.sub = cfg.Log.Subscribe(audit.SubscribeOptions{Buffer: cfg.MetricsBuffer})
	if cfg.Approvals != nil && cfg.Gauges.PendingApprovals == nil {
		cfg.Gauges.PendingApprovals = cfg.Approvals.PendingCount
	}
	s.metrics = newMetrics(cfg.Gauges, cfg.Log, s.streams.open, s.sub.Dropped)
	s.routes()
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
	if cfg.ErrorLog != nil {
		s.hs.ErrorLog = newStdLog(cfg.ErrorLog)
	}
	go s.count()
	return s, nil
}

func (s *Server) routes() {
	s.route("/healthz", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route("/readyz", http.MethodGet, func(w http.ResponseWriter, r *http.Request) { s.serveReady(w, true) })
	metrics := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	s.route("/metrics", http.MethodGet, metrics.ServeHTTP)
	s.route("/v1/policy/reload", http.MethodPost, s.serveReload)
	s.route("/v1/events", http.MethodGet, s.serveEvents)
	s.route("/v1/rules", http.MethodGet, s.serveRules)
	s.route("/v1/mcp/inventory", http.MethodGet, s.serveInventory)
	s.route("/v1/mcp/pins", http.MethodGet, s.servePins)
	s.route("/v1/mcp/pins/accept", http.MethodPost, s.serveAcceptPin)
	s.route("/v1/secrets", http.MethodGet, s.serveSecrets) // secrets.go
	s.route("/v1/mcp/servers", http.MethodGet, s.serveServers)
	s.approvalRoutes()
	s.oauthRoutes()
	s.ingestRoutes()
}

// route serves path for one method; another method gets a JSON 405.
func (s *Server) route(path, method string, h http.HandlerFunc) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s wants %s, not %s", path, method, r.Method))
			return
		}
		h(w, r)
	})
}

// Handle mounts h at pattern (http.ServeMux syntax, methods included:
// "POST /v1/approvals/{id}/approve"), behind the token like every other
// endpoint. It is how later parts of the control plane (approvals, the
// console) plug in; call it before Serve. A request no pattern takes
// (another method included) is answered with a JSON 404.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP checks the token, then routes. Without the token nothing is
// routed, so an unknown path and a known one answer alike; the console's
// files (they hold no data: console.go) and the probes' terse answers
// alone are served without it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, done := s.boundBody(w, r) // limits.go: refusals do not wait for a body
	defer done()
	if isConsole(r.URL.Path) {
		s.console.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == CallbackPath {
		s.serveOAuthCallback(w, r) // a browser brings it, without the token: its state protects it (oauth.go)
		return
	}
	if !s.token.ok(r) {
		if isProbe(r) {
			if r.URL.Path == "/readyz" {
				s.serveReady(w, false)
			} else {
				writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			}
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentg admin"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "this endpoint wants the admin token: Authorization: Bearer TOKEN (the token is in the data directory's "+TokenFile+")")
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, "not_found", "no admin endpoint "+r.Method+" "+r.URL.Path)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// serveReady answers /readyz: 200 when agentg serves traffic and can
// record it, else 503 with the reason; detail says why in words, which
// only a caller with the token gets (the event log's error names files).
func (s *Server) serveReady(w http.ResponseWriter, detail bool) {
	if !s.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "agentg is not serving (starting or shutting down)")
		return
	}
	if err := s.cfg.Log.SinkError(); err != nil {
		// Decisions are still enforced, but not recorded: not ready,
		// so that an orchestrator notices (README, Events).
		msg := "the event log cannot be written: decisions are enforced, events are dropped and counted in agentg_events_dropped_total"
		if detail {
			msg = "the event log cannot be written (" + err.Error() + "): decisions are enforced, events are dropped and counted in agentg_events_dropped_total"
		}
		writeError(w, http.StatusServiceUnavailable, "event_log_failing", msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// isProbe is a liveness or readiness probe, which an orchestrator sends
// without the token (Kubernetes' httpGet probes, Docker's HEALTHCHECK):
// their answers say only whether agentg lives and serves.
func isProbe(r *http.Request) bool {
	return (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.hs.Serve(limitListener(ln, s.cfg.MaxConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// SetReady says whether agentg serves traffic (GET /readyz).
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// ObserveReload counts a policy reload and whether it failed, whatever
// triggered it.
func (s *Server) ObserveReload(err error) { s.metrics.observeReload(err) }

// Shutdown ends the event streams, stops serving (waiting for requests in
// flight until ctx ends) and stops counting events.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.done) })
	err := s.hs.Shutdown(ctx)
	s.sub.Close()
	<-s.stopped
	if err != nil {
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return nil
}

// count feeds the metrics and the recent events from the events until
// Shutdown.
func (s *Server) count() {
	defer close(s.stopped)
	var eng *rules.Engine
	var group func(string) string
	for {
		select {
		case <-s.done:
			return
		case e := <-s.sub.Events():
			if cur := s.cfg.Policy.Engine(); cur != eng {
				eng, group = cur, cur.RuleGroups() // once per reload
			}
			s.metrics.observe(e, group(e.Rule))
			s.recent.add(e)
		}
	}
}

// streamCount counts the open event streams.
type streamCount struct{ n atomic.Int64 }

func (c *streamCount) acquire(max int) bool {
	if c.n.Add(1) > int64(max) {
		c.n.Add(-1)
		return false
	}
	return true
}

func (c *streamCount) release()  { c.n.Add(-1) }
func (c *streamCount) open() int { return int(c.n.Load()) }
