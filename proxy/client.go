package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

// agentg's own checked HTTP client: the calls agentg makes itself (OAuth
// metadata and token endpoints, a token-exchange STS, the gateway's JWKS)
// go out the way an agent's requests do, so that no call of agentg's
// reaches what the policy does not allow (the MCP gateway's upstream
// requests are the agent's own, with its credentials: Send, send.go):
//
//   - Each request, and each redirect hop (the http.Client sends every
//     hop through the same RoundTripper), is decided by the host rules,
//     the address checks (agentg's own listeners are builtin:self) and
//     the HTTP rules, and gets one event (door "agentg").
//   - It is decided as the agent the call is made for, when the caller
//     names one (ForAgent): a call an agent's request leads agentg to
//     make (where the agent or its upstream chooses the URL) can reach
//     only what that agent may reach, so going through agentg widens no
//     agent's policy. Otherwise it is decided as rules.SelfAgent, the
//     identity of agentg's own calls to places the policy itself names
//     (the STS of a token_exchange binding): the policy scopes rules to
//     it with agents: [agentg].
//   - It is dialed by the checkedDialer to the checked addresses only,
//     and upstream TLS is verified against the same roots as
//     interception's (Config.UpstreamRoots, else the system's).
//   - No credential is attached (bindings are for agents' requests), no
//     proxy from the environment is used, an approve rule refuses
//     (nobody is there to hold the call for), and no quota is charged
//     (they meter what agents send; agentg's calls are few and bounded
//     by the requests that cause them).
//
// A refused request is an error wrapping *RefusedError; the response of
// an allowed one is the upstream's.

// DoorClient is the door of agentg's own calls in their events.
const DoorClient = "agentg"

// maxRedirects bounds the hops a call follows, each decided again.
const maxRedirects = 5

type agentKey struct{}

// ForAgent returns ctx saying that the calls made with it are made for
// agent: the client decides them as that agent.
func ForAgent(ctx context.Context, agent string) context.Context {
	return context.WithValue(ctx, agentKey{}, agent)
}

type parentKey struct{}

// withParent says that the calls made with ctx are made for the request
// whose event is id: their events name it as parent.
func withParent(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, parentKey{}, id)
}

func agentFor(ctx context.Context) string {
	if a, _ := ctx.Value(agentKey{}).(string); a != "" {
		return a
	}
	return rules.SelfAgent
}

// RefusedError is a call of agentg's own that the policy (or a check)
// refused before anything was sent.
type RefusedError struct {
	Status int    // what an agent would have been answered: 403, 400, 502
	Rule   string // the deciding rule, when a rule decided
	Text   string
}

func (e *RefusedError) Error() string { return e.Text }

// ownClient holds the client's transports, one per checked destination
// like the forwarder's, made on first use.
type ownClient struct {
	once  sync.Once
	pool  atomic.Pointer[transportPool]
	httpc *http.Client
}

func (c *ownClient) closeIdle() {
	if p := c.pool.Load(); p != nil {
		p.closeIdle()
	}
}

// Client is agentg's own checked HTTP client (see above). It is safe for
// concurrent use; every call returns the same client.
func (s *Server) Client() *http.Client {
	s.own.once.Do(func() {
		// Idle connections: the MCP gateway's upstream sessions have one
		// request in flight per client session and server; fewer idle
		// ones than that closes (and later re-handshakes) the surplus
		// after every burst.
		plain := &http.Transport{
			Proxy:                 nil,
			DialContext:           s.dial.dialChecked,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       &tls.Config{RootCAs: s.cfg.UpstreamRoots, MinVersion: tls.VersionTLS12},
		}
		s.own.pool.Store(newTransportPool(plain, nil, 256))
		s.own.httpc = &http.Client{
			Transport: (*ownTransport)(s),
			CheckRedirect: func(_ *http.Request, via []*http.Request) error {
				if len(via) >= maxRedirects {
					return fmt.Errorf("agentg: stopped after %d redirects", maxRedirects)
				}
				return nil // the next hop is decided by RoundTrip like the first
			},
		}
	})
	return s.own.httpc
}

// ownTransport is the client's RoundTripper: decide, then send to the
// checked addresses.
type ownTransport Server

func (t *ownTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s := (*Server)(t)
	f := s.events.newFlow("http", DoorClient, r.Method)
	f.door, f.agent, f.scheme, f.path = DoorClient, agentFor(r.Context()), r.URL.Scheme, r.URL.EscapedPath()
	f.parent, _ = r.Context().Value(parentKey{}).(string)
	if ref := s.decideOwn(r, f); ref != nil {
		ref.record(f)
		s.events.emit(f)
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, &RefusedError{Status: ref.status, Rule: ref.header.Get("X-Agentg-Rule"), Text: ref.text}
	}
	out := r.WithContext(withFlow(r.Context(), f))
	if len(f.ips) == 1 {
		f.setDialed(f.ips[0])
	} else {
		out = out.WithContext(traceDialed(out.Context(), f))
	}
	if r.Body != nil && r.Body != http.NoBody {
		out.Body = &countingBody{ReadCloser: r.Body, n: &f.up}
	}
	resp, err := s.own.pool.Load().get(poolKey(f), false, nil).RoundTrip(out)
	if err != nil {
		if errors.Is(err, errSelf) {
			ref := denied(f)
			s.events.emit(f)
			return nil, &RefusedError{Status: ref.status, Rule: rules.RuleSelf, Text: ref.text}
		}
		f.setStatus(http.StatusBadGateway, err.Error())
		s.events.emit(f)
		return nil, fmt.Errorf("agentg: %s: %w", f.host, err)
	}
	f.setStatus(resp.StatusCode, "")
	if resp.TLS != nil {
		f.mu.Lock()
		f.tlsVersion, f.alpn = tls.VersionName(resp.TLS.Version), resp.TLS.NegotiatedProtocol
		f.mu.Unlock()
	}
	resp.Body = &ownBody{ReadCloser: resp.Body, s: s, f: f}
	return resp, nil
}

// decideOwn runs the exchange path's checks on one of agentg's own
// requests: scheme, authority, path, host rules, addresses, HTTP rules.
func (s *Server) decideOwn(r *http.Request, f *flow) *refusal {
	var defPort uint16
	switch r.URL.Scheme {
	case "https":
		defPort = 443
	case "http":
		defPort = 80
	default:
		return &refusal{status: http.StatusBadRequest, text: fmt.Sprintf("agentg: cannot call %q: only http and https", r.URL.Scheme)}
	}
	if !validMethod(r.Method) || r.Method == http.MethodConnect {
		return &refusal{status: http.StatusBadRequest, text: "agentg: invalid request method"}
	}
	h, err := addr.ParseAuthority(r.URL.Host, defPort)
	if err != nil {
		return &refusal{status: http.StatusBadRequest, text: "agentg: " + err.Error()}
	}
	f.host = h
	if r.Host != "" {
		if ref := checkAuthority(r.Host, defPort, h); ref != nil {
			return ref
		}
	}
	if ambiguousPath(r.URL) {
		return ambiguousRefusal
	}
	eng := s.cfg.Policy.Engine()
	f.decision = eng.Host(f.agent, h)
	if !f.decision.Allowed() {
		return denied(f)
	}
	ips, err := s.pipe.resolve(r.Context(), eng, h)
	if err != nil {
		return &refusal{status: http.StatusBadGateway, text: "agentg: " + err.Error()}
	}
	if ref := s.pipe.admitAddrs(eng, f, ips); ref != nil {
		return ref
	}
	q := rules.Request{Agent: f.agent, Host: h, Method: r.Method, Path: r.URL.Path}
	for _, oh := range rules.OverrideHeaders() {
		q.Overrides = append(q.Overrides, r.Header.Values(oh)...)
	}
	f.decision = eng.HTTP().Decide(f.decision, q, false)
	if f.decision.Action == rules.Approve {
		f.decision = rules.Decision{Action: rules.Deny, Rule: f.decision.Rule, Source: f.decision.Source,
			Reason: "an approve rule covers it, and agentg's own calls are not held for approval"}
	}
	if !f.decision.Allowed() {
		return denied(f)
	}
	return nil
}

// ownBody counts the answer and writes the call's event when it is read
// to the end or closed, whichever comes first.
type ownBody struct {
	io.ReadCloser
	s *Server
	f *flow
}

func (b *ownBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.f.down.Add(int64(n))
	if err != nil {
		if err != io.EOF {
			b.f.mu.Lock()
			b.f.err = "reading the answer: " + err.Error()
			b.f.mu.Unlock()
		}
		b.s.events.emit(b.f) // once, however many paths reach it
	}
	return n, err
}

func (b *ownBody) Close() error {
	err := b.ReadCloser.Close()
	b.s.events.emit(b.f) // once, however many paths reach it
	return err
}
