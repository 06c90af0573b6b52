package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// session is one client session of the gateway (for the 2026-07-28
// revision, which has none, one per agent): its SDK server, whose
// catalogue is the merge of its upstream sessions' lists, and those
// upstream sessions, one per server, opened on first use.
type session struct {
	g         *Gateway
	who       Who
	stateless bool
	srv       *sdk.Server
	cat       *catalogue

	mu        sync.Mutex
	ss        *sdk.ServerSession // the client's session, once it has sent a request (stateful)
	ups       map[string]*upstream
	level     sdk.LoggingLevel
	progress  map[string]progressCall // calls in flight with a progress token, by the gateway's token for them
	nextToken uint64
	calls     map[string][]caller // the client's requests in flight, by the server they went to
	tasks     *taskTable          // the tasks the client created (tasks.go), made on first use
	done      bool
}

var errNoClient = errors.New("agentg gateway: no client session to ask (the 2026-07-28 revision has none: the server must ask with input_required)")

func newSession(g *Gateway, who Who, stateless bool) *session {
	s := &session{g: g, who: who, stateless: stateless, ups: map[string]*upstream{}, progress: map[string]progressCall{}, calls: map[string][]caller{}}
	s.cat = newCatalogue(s)
	s.srv = sdk.NewServer(&sdk.Implementation{Name: "agentg-gateway", Version: g.cfg.Version}, &sdk.ServerOptions{
		Logger: slog.New(slog.DiscardHandler),
		Capabilities: &sdk.ServerCapabilities{
			Tools: &sdk.ToolCapabilities{ListChanged: true}, Prompts: &sdk.PromptCapabilities{ListChanged: true},
			Resources: &sdk.ResourceCapabilities{ListChanged: true}, Logging: &sdk.LoggingCapabilities{},
		},
		// The gateway's own session ids, 130 random bits (the legacy
		// transport's are the SDK's, the same): never an upstream's.
		GetSessionID:       rand.Text,
		CompletionHandler:  s.complete,
		SubscribeHandler:   s.subscribe,
		UnsubscribeHandler: s.unsubscribe,
	})
	s.srv.AddReceivingMiddleware(s.middleware)
	return s
}

// middleware binds the client's session on its first request, loads the
// catalogue before anything that needs it, and passes logging/setLevel
// on to the servers.
func (s *session) middleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		ctx = withInbound(ctx, req)
		if ss, ok := req.GetSession().(*sdk.ServerSession); ok && !s.stateless {
			s.bind(ss)
		}
		if kind, ok := kindOf[method]; ok {
			if listing[method] && firstPage(req.GetParams()) {
				// Every list is the servers' answer now; its later pages
				// are pages of the same answer.
				s.cat.refresh(ctx, kind, method)
			} else {
				s.cat.ensure(ctx, kind, method)
			}
		}
		if cr, ok := req.(*sdk.CallToolRequest); ok && method == "tools/call" {
			if r, ok := s.unlisted(cr.Params.Name); ok {
				// Not in the catalogue (hidden by the policy, or not
				// listed): the server it names decides, through the
				// guard, so the refusal has its rule and its event.
				res, err := s.callTool(r)(ctx, cr)
				if err != nil {
					return nil, err // not a typed nil: the SDK answers an error alone
				}
				return res, nil
			}
		}
		res, err := next(ctx, method, req)
		if p, ok := req.GetParams().(*sdk.SetLoggingLevelParams); ok && method == "logging/setLevel" && err == nil {
			s.setLevel(ctx, p.Level)
		}
		return res, err
	}
}

// bind takes the client's session: server-to-client requests go there,
// and its end ends the upstream sessions.
func (s *session) bind(ss *sdk.ServerSession) {
	s.mu.Lock()
	first := s.ss == nil
	if first {
		s.ss = ss
	}
	s.mu.Unlock()
	if first {
		s.g.indexSession(ss.ID(), s)
		s.g.bindID(ss.ID(), s)
		go func() {
			ss.Wait()
			s.g.unindexSession(ss.ID())
			s.close()
			s.g.forget(s)
		}()
	}
}

func (s *session) client() *sdk.ServerSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ss
}

// upstream returns the session with server, made (not yet opened) on
// first use.
func (s *session) upstream(server string) (*upstream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil, errors.New("agentg gateway: the session is closed")
	}
	if u := s.ups[server]; u != nil {
		return u, nil
	}
	for _, b := range s.g.engine().MCP().GatewayServers() {
		if b.Name == server {
			u := &upstream{s: s, bind: b}
			s.ups[server] = u
			return u, nil
		}
	}
	return nil, fmt.Errorf("agentg gateway: mcp server %s is no longer in the policy", server)
}

// close ends every upstream session, once.
func (s *session) close() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	ups := s.ups
	s.mu.Unlock()
	s.g.lists.forget(s.cat)
	var wg sync.WaitGroup
	for _, u := range ups {
		wg.Add(1)
		go func() { defer wg.Done(); u.close() }()
	}
	wg.Wait()
}

// clientOptions are the handlers of an upstream session's SDK client:
// what the server sends the client goes to the client session.
func (s *session) clientOptions(server string) *sdk.ClientOptions {
	o := &sdk.ClientOptions{
		Logger: slog.New(slog.DiscardHandler),
		// Answered by serverRequests, before the SDK's own checks: set
		// so that the client capability is declared.
		ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) { return nil, errNoClient },
		// Sampling is deprecated in 2026-07-28 but still served: the
		// gateway passes on what servers ask.
		CreateMessageHandler:       s.sample(server),
		ToolListChangedHandler:     func(ctx context.Context, _ *sdk.ToolListChangedRequest) { s.cat.changed(server, kindTools) },
		PromptListChangedHandler:   func(ctx context.Context, _ *sdk.PromptListChangedRequest) { s.cat.changed(server, kindPrompts) },
		ResourceListChangedHandler: func(ctx context.Context, _ *sdk.ResourceListChangedRequest) { s.cat.changed(server, kindResources) },
		ResourceUpdatedHandler: func(ctx context.Context, r *sdk.ResourceUpdatedNotificationRequest) {
			s.srv.ResourceUpdated(ctx, r.Params)
		},
		LoggingMessageHandler:       s.logMessage(server),
		ProgressNotificationHandler: s.progressed,
		Capabilities:                &sdk.ClientCapabilities{RootsV2: &sdk.RootCapabilities{ListChanged: true}},
	}
	if s.stateless {
		// No client session to ask: a server's input_required result
		// goes to the client as it is, and its retry comes back.
		o.MultiRoundTrip = &sdk.MultiRoundTripOptions{Disabled: true}
	}
	return o
}

// cause is the client request that a server's request to the client is
// part of: the latest request in flight to that server (its session and
// context: the SDK sends a request related to a call on the call's own
// stream), or the client's session alone when none is.
func (s *session) cause(ctx context.Context, server string) (caller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.calls[server]; len(cs) > 0 {
		return cs[len(cs)-1], nil
	}
	if s.ss == nil {
		return caller{}, errNoClient
	}
	return caller{ctx, s.ss}, nil
}

// inFlight records a client request to server while it is in flight;
// the func it returns ends the record.
func (s *session) inFlight(ctx context.Context, server string, ss *sdk.ServerSession) func() {
	if ss == nil {
		return func() {}
	}
	c := caller{ctx, ss}
	s.mu.Lock()
	s.calls[server] = append(s.calls[server], c)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		cs := s.calls[server]
		for i := range cs {
			if cs[i] == c {
				s.calls[server] = append(cs[:i], cs[i+1:]...)
				break
			}
		}
		if len(s.calls[server]) == 0 {
			delete(s.calls, server)
		}
	}
}

func (s *session) sample(server string) func(context.Context, *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
	return func(ctx context.Context, r *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
		c, err := s.cause(ctx, server)
		if err != nil {
			return nil, err
		}
		return c.ss.CreateMessage(c.ctx, r.Params)
	}
}

// serverRequests sends a server's requests to the client: roots/list,
// and elicitation/create before the SDK client's own checks of its
// schema, which are stricter than clients are (the client reads it, and
// the gateway must not refuse what the client would take).
func (s *session) serverRequests(server string) sdk.Middleware {
	return func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if method != "roots/list" && method != "elicitation/create" {
				return next(ctx, method, req)
			}
			c, err := s.cause(ctx, server)
			if err != nil {
				return nil, err
			}
			switch p := req.GetParams().(type) {
			case *sdk.ListRootsParams:
				return nonNil(c.ss.ListRoots(c.ctx, p))
			case *sdk.ElicitParams:
				return nonNil(c.ss.Elicit(c.ctx, p))
			}
			return next(ctx, method, req)
		}
	}
}

// nonNil is a result or an error, never a typed nil result beside an
// error.
func nonNil[R sdk.Result](r R, err error) (sdk.Result, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}

// logMessage passes a server's log message on, on the stream of the
// call it belongs to when one is in flight.
func (s *session) logMessage(server string) func(context.Context, *sdk.LoggingMessageRequest) {
	return func(ctx context.Context, r *sdk.LoggingMessageRequest) {
		if c, err := s.cause(ctx, server); err == nil {
			c.ss.Log(c.ctx, r.Params)
		}
	}
}

// progressed passes a server's progress on to the client request whose
// call it is, under the client's own token.
func (s *session) progressed(ctx context.Context, r *sdk.ProgressNotificationClientRequest) {
	tok, ok := r.Params.ProgressToken.(string)
	if !ok {
		return // not a token of the gateway's: no call of a client's
	}
	s.mu.Lock()
	p, ok := s.progress[tok]
	s.mu.Unlock()
	if !ok {
		return
	}
	out := *r.Params
	out.ProgressToken = p.token
	// In the call's context: a stateless session's notifications reach
	// its client only on the call's own stream.
	p.ss.NotifyProgress(p.ctx, &out)
}

// caller is a client request in flight: its session and its context.
type caller struct {
	ctx context.Context
	ss  *sdk.ServerSession
}

// progressCall is a call in flight that asked for progress: who asked,
// and the token it asked with.
type progressCall struct {
	caller
	token any
}

// tracked gives a call that carries a progress token a token of the
// gateway's own for the server, unique in this session (clients of one
// agent share a 2026-07-28 session, and each picks its tokens itself),
// and remembers whose it is while the call is in flight. It returns that
// token ("" for none) and the func that forgets it.
func (s *session) tracked(ctx context.Context, token any, ss *sdk.ServerSession) (string, func()) {
	if token == nil || ss == nil {
		return "", func() {}
	}
	s.mu.Lock()
	s.nextToken++
	key := "agentg-" + strconv.FormatUint(s.nextToken, 10)
	s.progress[key] = progressCall{caller{ctx, ss}, token}
	s.mu.Unlock()
	return key, func() {
		s.mu.Lock()
		delete(s.progress, key)
		s.mu.Unlock()
	}
}

func (s *session) logLevel() sdk.LoggingLevel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// setLevel passes the client's logging level on to the open sessions
// (and to those opened later, by conn).
func (s *session) setLevel(ctx context.Context, l sdk.LoggingLevel) {
	s.mu.Lock()
	s.level = l
	ups := make([]*upstream, 0, len(s.ups))
	for _, u := range s.ups {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	for _, u := range ups {
		if cs := u.open(); cs != nil {
			cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: l})
		}
	}
}

// unlisted routes a tool name the catalogue does not hold to the server
// its prefix names (or the one server without a prefix).
func (s *session) unlisted(name string) (route, bool) {
	if _, ok := s.cat.lookup(kindTools, name); ok {
		return route{}, false
	}
	var bare []string
	for _, b := range s.g.engine().MCP().GatewayServers() {
		if b.Prefix == "" {
			bare = append(bare, b.Name)
			continue
		}
		if rest, ok := strings.CutPrefix(name, b.Prefix+"."); ok && rest != "" {
			return route{b.Name, rest}, true
		}
	}
	if len(bare) == 1 {
		return route{bare[0], name}, true
	}
	return route{}, false
}

// firstPage reports whether a list request asks for its first page (no
// cursor).
func firstPage(p sdk.Params) bool {
	switch p := p.(type) {
	case *sdk.ListToolsParams:
		return p == nil || p.Cursor == ""
	case *sdk.ListPromptsParams:
		return p == nil || p.Cursor == ""
	case *sdk.ListResourcesParams:
		return p == nil || p.Cursor == ""
	case *sdk.ListResourceTemplatesParams:
		return p == nil || p.Cursor == ""
	}
	return true
}
