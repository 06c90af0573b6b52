package proxy

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// The exchange path: every HTTP request agentg decides, whatever door it
// came through (absolute-form on the explicit listener, inside an
// intercepted tunnel, HTTP/1 inside a plain tunnel, and next the
// transparent listener), goes through serveExchange. One function checks
// that the authority agrees, the method and path are unambiguous, the host
// and HTTP rules allow it and the address to dial is allowed now; one
// forwarder sends it; one refusal writer answers what is refused.

// door says where a request came in, which is what the exchange path must
// know to find its destination.
type door uint8

const (
	doorAbsolute    door = iota // absolute-form request on the explicit listener
	doorTunnel                  // a request inside a tunnel (intercepted or HTTP/1): the tunnel fixed who and where
	doorTransparent             // a request on a transparent HTTP/1 connection: who and the address are fixed, the Host says the name
)

// exchange is one request on the exchange path.
type exchange struct {
	door   door
	scheme string // upstream scheme: "http" or "https"
	tunnel *flow  // doorTunnel, doorTransparent: the tunnel's (the connection's) flow
}

// serveExchange decides and forwards one request, and emits its event.
func (s *Server) serveExchange(w http.ResponseWriter, r *http.Request, x exchange) {
	var f *flow
	if x.door != doorAbsolute {
		f = s.events.child(x.tunnel, r.Method)
		if x.scheme == "https" {
			f.tls = x.tunnel.tls // plaintext HTTP/1 in an intercepted tunnel was never TLS
		}
	} else {
		f = s.events.newFlow("http", r.RemoteAddr, r.Method)
	}
	f.scheme, f.path = x.scheme, r.URL.EscapedPath()
	defer s.events.emit(f)
	// The leak guard's buffer of the body's first part goes back when the
	// exchange ends, whoever read the body (leak.go).
	defer func() { f.prefix.done() }()
	// Every way this exchange ends (a refusal, the MCP guard's answer, the
	// forwarder's) ends with the body read or the connection closing.
	defer s.guardBody(w, r).end()
	if ref := s.decideExchange(f, r, x); ref != nil {
		s.writeRefusal(w, f, ref)
		return
	}
	// A model call (llm.go) is read and its model decided before any
	// credential is attached; nil for every other request.
	lc, refused := s.llmPrepare(s.cfg.Policy.Engine(), f, w, r)
	if refused {
		return
	}
	// Every check allowed the request: only now may a credential be
	// attached (inject.go), toward the destination that was checked,
	// once the leak guard found no held value or placeholder going
	// where no binding of it names (leak.go) and swapped those that may.
	if ref, why := s.guardCredentials(s.cfg.Policy.Engine(), f, r); ref != nil {
		s.writeRefusal(w, f, ref)
		f.setStatus(ref.status, why)
		return
	}
	if ref, why := s.injectCredentials(s.cfg.Policy.Engine(), f, r); ref != nil {
		s.writeRefusal(w, f, ref)
		f.setStatus(ref.status, why)
		return
	}
	up := upstream{s: s, f: f} // the one forwarder, bound to this exchange's flow
	if r.Body != nil && r.Body != http.NoBody {
		// Full duplex since guardBody: the body streams upstream while
		// the answer streams back.
		r.Body = &countingBody{ReadCloser: r.Body, n: &f.up, meter: f.meter}
	}
	if lc != nil {
		s.llmServe(w, r, up, f, lc)
		return
	}
	if x, ok := s.mcpExchange(f, r); ok {
		if s.cfg.MCP == nil {
			s.writeRefusal(w, f, &refusal{status: http.StatusForbidden,
				text: "agentg: " + f.host.String() + " is an MCP server the policy governs, and this agentg has no MCP dissector"})
			return
		}
		x.Upstream = s.withOAuth(f, up) // an oauth binding's token handling (oauth.go), when one matched
		s.cfg.MCP.Serve(w, r, x)
		return
	}
	if f.oauth != nil {
		s.withOAuth(f, up).ServeHTTP(w, r)
		return
	}
	up.ServeHTTP(w, r)
}

// mcpExchange says whether the exchange goes to the MCP guard: always on a
// destination the policy's mcp.servers binds (where anything that is not
// MCP is refused; an IP literal that is a governed name's address is
// that name, and an upgrade on any path of a governed host is the
// host's server's), and, when the policy has an mcp section, for what may
// be MCP elsewhere (a POST, which the guard reads, a request carrying
// MCP's own headers, or a GET for an event stream, which may be a
// 2024-11-05 HTTP+SSE session: the guard peeks at its first event).
func (s *Server) mcpExchange(f *flow, r *http.Request) (mcp.Exchange, bool) {
	eng := s.cfg.Policy.Engine()
	server, bound := eng.MCP().Server(f.host, r.URL.Path)
	if !bound && (f.host.IsIP() || wire.IsUpgrade(r.Header)) {
		h := f.host
		if h.IsIP() {
			// A governed server's address is the server (governed.go).
			h, _, _ = s.governedAt(r.Context(), eng, f.agent, f.host)
		}
		if h.Name != "" {
			server, bound = eng.MCP().Server(h, r.URL.Path)
			if !bound && wire.IsUpgrade(r.Header) {
				// An upgrade on any path of a governed host: no MCP
				// transport runs over one, wherever the entry's path
				// glob points (the guard refuses it unless the
				// entry says websocket: allow).
				server, bound = eng.MCP().Host(h)
			}
		}
	}
	if !bound && (!eng.MCP().Defined || !wire.MayBeMCP(r)) {
		return mcp.Exchange{}, false
	}
	// Built only for the guard: most exchanges are not MCP.
	x := mcp.Exchange{Engine: eng, Agent: f.agent, Parent: f.id, Client: f.client,
		Server: server, Host: f.host.Name, Port: f.host.Port, Path: f.path, Scheme: f.scheme,
		URL: f.scheme + "://" + f.host.String() + f.path, Door: f.door}
	if f.origDst.IsValid() {
		x.OriginalDst = f.origDst.String()
	}
	return x, true
}

// decideExchange runs every check of the exchange path, in order, and
// fills f; a non-nil refusal is the answer to send instead of forwarding.
// The quotas come last: only a request the rules allow spends them.
func (s *Server) decideExchange(f *flow, r *http.Request, x exchange) *refusal {
	if !validMethod(r.Method) {
		return &refusal{status: http.StatusBadRequest, text: "agentg: invalid request method " + strconv.Quote(r.Method)}
	}
	if r.Method == http.MethodConnect {
		// Inside a tunnel a CONNECT would open a stream no rule sees
		// (an HTTP/2 CONNECT's DATA reaches an HTTP/1 upstream unframed).
		return &refusal{status: http.StatusMethodNotAllowed, text: "agentg: CONNECT is not allowed inside a tunnel"}
	}
	defPort := uint16(80)
	if x.scheme == "https" {
		defPort = 443
	}
	eng := s.cfg.Policy.Engine()
	switch x.door {
	case doorAbsolute:
		n, ok := takeNote(r)
		if r.URL.Scheme != "http" {
			return &refusal{status: http.StatusBadRequest,
				text: "agentg: only http:// URLs are forwarded as requests; use CONNECT for " + r.URL.Scheme}
		}
		h, err := addr.ParseAuthority(r.URL.Host, 80)
		if err != nil {
			return &refusal{status: http.StatusBadRequest, text: "agentg: " + err.Error()}
		}
		f.host = h
		if ref := checkHostNote(n, ok, h); ref != nil {
			return ref
		}
		if ambiguousPath(r.URL) {
			return ambiguousRefusal
		}
		if ref := s.pipe.authorize(r.Context(), f, r, h); ref != nil {
			return ref
		}
	case doorTunnel:
		if ref := checkAuthority(r.Host, defPort, f.host); ref != nil {
			return ref
		}
		if ambiguousPath(r.URL) {
			return ambiguousRefusal
		}
		// The tunnel was authorised once; each request is authorised
		// again against the policy as it is now, and so are the
		// addresses the tunnel resolved.
		f.decision = eng.Host(f.agent, f.host)
		if !f.decision.Allowed() {
			return denied(f)
		}
		if ref := s.recheckAddrs(eng, f); ref != nil {
			return ref
		}
	case doorTransparent:
		if r.URL.IsAbs() || r.URL.Host != "" {
			return &refusal{status: http.StatusBadRequest,
				text: "agentg: an absolute-form request on a transparently redirected connection: send origin-form, or use agentg as a proxy"}
		}
		h := ipHost(f.origDst)
		if r.Host != "" {
			var err error
			h, err = addr.ParseAuthority(r.Host, f.origDst.Port())
			if err != nil {
				return &refusal{status: http.StatusBadRequest, text: "agentg: Host " + strconv.Quote(r.Host) + ": " + err.Error()}
			}
		}
		if h.Port != f.origDst.Port() {
			return &refusal{status: http.StatusMisdirectedRequest,
				text: "agentg: Host " + strconv.Quote(r.Host) + " names another port than the connection's, " + strconv.Itoa(int(f.origDst.Port()))}
		}
		if ambiguousPath(r.URL) {
			return ambiguousRefusal
		}
		if ref := s.pipe.authorizeTransparent(r.Context(), f, h); ref != nil {
			return ref
		}
	}
	// DNS over HTTPS goes to the resolvers the policy names, or nowhere
	// (doh.go): the DNS filter is the resolver.
	if isDoH(r) {
		if d := eng.DNS().DoH(f.agent, f.host); d.Action != rules.Allow {
			f.decision = d
			if !d.Allowed() {
				return denied(f)
			}
		}
	}
	// HTTP rules decide every request (rules.HTTPRules.Decide, the step
	// agentg check explains with). Inside a tunnel their answer is the
	// event's (http:default when none matched, as documented); on the
	// explicit listener it is when a rule spoke. A host decision let
	// through by report mode is never overwritten by an allow.
	q := rules.Request{Agent: f.agent, Host: f.host, Method: r.Method, Path: r.URL.Path}
	for _, h := range rules.OverrideHeaders() {
		q.Overrides = append(q.Overrides, r.Header.Values(h)...)
	}
	f.decision = eng.HTTP().Decide(f.decision, q, x.door == doorAbsolute)
	if f.decision.Action == rules.Approve {
		return s.holdRequest(r, f) // approve.go: nil once approved
	}
	if !f.decision.Allowed() {
		return denied(f)
	}
	return s.pipe.checkQuotas(eng, f) // quota.go
}

var ambiguousRefusal = &refusal{status: http.StatusBadRequest,
	text: "agentg: ambiguous request path (dot segments, empty segments, encoded or back slashes)"}

// recheckAddrs decides a tunnel's addresses again under the policy in
// force: those its resolve table no longer gives the name are dropped,
// the rest are checked as when the tunnel was opened.
func (s *Server) recheckAddrs(eng *rules.Engine, f *flow) *refusal {
	ips := f.ips
	if static, pinned := eng.Resolve(f.host.Name); pinned && !f.host.IsIP() {
		ips = make([]netip.Addr, 0, len(f.ips))
		for _, ip := range f.ips {
			if containsAddr(static, ip) {
				ips = append(ips, ip)
			}
		}
		if len(ips) == 0 {
			f.decision = rules.Decision{Action: rules.Deny, Rule: "builtin:resolve-changed",
				Reason: "the policy's resolve table no longer gives " + f.host.Name + " the tunnel's addresses"}
			return denied(f)
		}
	}
	return s.pipe.admitAddrs(eng, f, ips)
}

func containsAddr(ips []netip.Addr, ip netip.Addr) bool {
	for _, a := range ips {
		if a.Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

// takeNote takes the tracker's note of r's head.
func takeNote(r *http.Request) (note, bool) {
	if t := trackerOf(r); t != nil {
		return t.take()
	}
	return note{}, false
}

// checkHostNote compares the Host header the client sent with an
// absolute-form request's authority.
func checkHostNote(n note, ok bool, h addr.Host) *refusal {
	if !ok || n.bad != "" {
		return &refusal{status: http.StatusBadRequest, text: "agentg: could not read the request head", close: true}
	}
	if !n.hasHost {
		return nil
	}
	return checkAuthority(n.host, 80, h)
}

// checkAuthority refuses a Host header (or :authority) that names another
// destination than the one that was checked, with defPort standing in for
// a missing port.
func checkAuthority(got string, defPort uint16, want addr.Host) *refusal {
	h, err := addr.ParseAuthority(got, defPort)
	if err != nil || h.Name != want.Name || h.Port != want.Port {
		return &refusal{status: http.StatusMisdirectedRequest,
			text: "agentg: Host " + strconv.Quote(got) + " does not match the checked destination " + want.String()}
	}
	return nil
}

// validMethod reports whether m is an RFC 9110 token: a request whose
// method is anything else is not forwarded.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// ambiguousPath reports a request path that the policy and the upstream
// could read as different paths: dot or empty segments (with or without
// ;parameters), which servers
// resolve differently, and encoded slashes or backslashes, which some
// servers decode into separators. Path rules decide on the decoded path, so
// such requests are refused rather than guessed at.
func ambiguousPath(u *url.URL) bool {
	raw := u.EscapedPath()
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && (raw[i+1] == '2' && (raw[i+2] == 'f' || raw[i+2] == 'F') ||
			raw[i+1] == '5' && (raw[i+2] == 'c' || raw[i+2] == 'C')) {
			return true
		}
	}
	p := u.Path
	if strings.IndexByte(p, '\\') >= 0 {
		return true
	}
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		// "..;x" is ".." to servers that strip path parameters (Tomcat
		// and its kin read /public/..;/admin as /admin).
		if name, _, _ := strings.Cut(seg, ";"); name == "." || name == ".." {
			return true
		}
	}
	return strings.Contains(p, "//")
}
