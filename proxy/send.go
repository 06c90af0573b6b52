package proxy

import (
	"io"
	"net/http"

	"github.com/agentg/agentg/rules"
)

// Requests a door of agentg's own sends for an agent (issue 17: the MCP
// gateway's upstream sessions). The gateway is an MCP server to the agent
// and an MCP client to each upstream: agentg writes the upstream
// requests, but each one is the agent's call, so it meets exactly what
// the same request from that agent through the proxy meets, by the same
// code, in the same order as serveExchange:
//
//   - decided as the agent (decideOwn: scheme, authority, path, host
//     rules, checked addresses and builtin:self, HTTP rules; an approve
//     rule refuses, as for agentg's own calls: the gateway's calls are
//     held by the MCP guard's approvals, before they get here), and its
//     quotas charged (checkQuotas);
//   - the leak guard on the destination, the headers and the URL
//     (guardCredentials); the body of a governed server's POST is MCP,
//     which the MCP guard asked of each message before handing it here;
//   - the credential of the first binding the agent's request matches
//     (injectCredentials: header, basic, query, client certificate, token
//     exchange), server: bindings by the entry's name (Sender.Server);
//     an oauth binding sends through oauthUpstream (withOAuth): the
//     broker's token, renewed once on 401 or 403 insufficient_scope, or a
//     JSON-RPC refusal naming agentg oauth connect;
//   - sent by the one forwarder (upstream), to the checked addresses
//     only, the upstream's TLS verified, a binding's client certificate
//     on connections pooled for it alone.
//
// One event per request (kind http, door Sender.Door) names the binding
// and the names of the secrets it attached, never a value. The agent
// never sees a secret: the answer is the upstream's (or agentg's
// refusal), and what the agent reads of it is what the MCP guard passed.

// Sender is whom a door of agentg's own sends a request for. Fields may
// be added.
type Sender struct {
	Agent  string // the agent the door proved; required
	Client string // the agent's address, for the event
	Door   string // the door, for the event ("gateway")
	// Server is the mcp servers entry the request goes to; "" for none.
	// server: bindings match by it, as the proxy matches the entry its
	// url binds (an entry the gateway alone serves binds none).
	Server string
	// Subject is the agent's own bearer token from its identity provider
	// when the door proved the agent with one: a token_exchange binding
	// exchanges it (the agent's Authorization is the door's, and never
	// sent on). "" when the agent proved itself otherwise.
	Subject string
}

// Send sends r, an absolute-URL client request (as http.Client takes one),
// for by.Agent as described above, and writes the answer to w: the
// upstream's, or agentg's refusal. It returns nil when the request went
// upstream (whatever it answered) or an oauth binding answered it in
// JSON-RPC (with an event of its own), else the reason agentg answered
// instead: a *RefusedError naming the rule, or the failure to reach the
// upstream. Send may change r's headers and URL.
func (s *Server) Send(w http.ResponseWriter, r *http.Request, by Sender) error {
	if by.Agent == "" {
		// Who sent it is what every step decides by: nobody is refused,
		// before anything is sent (the door's caller logs it).
		ref := &refusal{status: http.StatusForbidden, text: "agentg: a request sent for no agent is not sent"}
		ref.fill(w.Header())
		w.WriteHeader(ref.status)
		io.WriteString(w, ref.text+"\n")
		return &RefusedError{Status: ref.status, Text: ref.text}
	}
	f := s.events.newFlow("http", by.Client, r.Method)
	f.door, f.agent, f.scheme, f.path, f.toServer = by.Door, by.Agent, r.URL.Scheme, r.URL.EscapedPath(), by.Server
	f.subject = by.Subject
	defer s.events.emit(f)
	defer func() { f.prefix.done() }()
	eng := s.cfg.Policy.Engine()
	ref := s.decideOwn(r, f)
	if ref == nil {
		ref = s.pipe.checkQuotas(eng, f)
	}
	if ref != nil {
		s.writeRefusal(w, f, ref)
		return refusedError(f, ref)
	}
	// Every check allowed the request: only now may a credential be
	// attached, once the leak guard found nothing going where no binding
	// of it names.
	for _, step := range [...]func(*rules.Engine, *flow, *http.Request) (*refusal, string){s.guardCredentials, s.injectCredentials} {
		if ref, why := step(eng, f, r); ref != nil {
			s.writeRefusal(w, f, ref)
			f.setStatus(ref.status, why)
			return refusedError(f, ref)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, n: &f.up, meter: f.meter}
	}
	// The forwarder reads the destination from the flow, and the request
	// as a server's handler gets one.
	r.RequestURI = ""
	up := upstream{s: s, f: f}
	s.withOAuth(f, up).ServeHTTP(w, r)
	f.mu.Lock()
	failed := f.refused
	f.mu.Unlock()
	if failed != nil {
		return refusedError(f, failed) // the forwarder's: builtin:self, unreachable, a quota spent
	}
	return nil
}

// refusedError is ref as Send's error.
func refusedError(f *flow, ref *refusal) error {
	e := &RefusedError{Status: ref.status, Text: ref.text}
	if ref.status == http.StatusForbidden {
		f.mu.Lock()
		e.Rule = f.decision.Rule
		f.mu.Unlock()
	}
	return e
}
