package rules

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "http", rank: rankHTTP,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.http, err = p.httpRules(v)
			return err
		},
		steps: []step{{phase: phaseRules, at: 30, run: (*compiler).compileHTTP}}})
}

// The http section: rules for each HTTP request agentg decides, by
// method, host and path.

// httpPat is one "METHODS HOST[PATH]" value of an http rule.
type httpPat struct {
	text    string   // normalised, for reasons
	methods []string // upper-case; nil: every method
	host    pattern
	glob    *glob // nil: every path
}

type httpRule struct {
	line int
	deny bool
	hold *Hold // an approve rule's
	pats []httpPat
	opts ruleOpts
}

func (p *parser) httpRules(n *yaml.Node) ([]httpRule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "http must be a list of rules")
	}
	var out []httpRule
	for _, it := range n.Content {
		vb, val, hold, o, err := p.ruleVerdict(it, nil, true)
		if err != nil {
			return nil, err
		}
		vals, err := p.items(val)
		if err != nil {
			return nil, err
		}
		if hold != nil && hold.Elicitation {
			return nil, p.errf(keyNode(it, "via"), "via elicitation applies to tool rules only: an HTTP request has no client to ask")
		}
		r := httpRule{line: it.Line, deny: vb == verbDeny, hold: hold, opts: o}
		for _, v := range vals {
			hp, err := parseHTTPPat(v.Value)
			if err != nil {
				return nil, p.errf(v, "%v", err)
			}
			r.pats = append(r.pats, hp)
		}
		out = append(out, r)
	}
	return out, nil
}

// parseHTTPPat parses "METHODS HOSTPATTERN[PATH]".
func parseHTTPPat(s string) (httpPat, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return httpPat{}, fmt.Errorf(`bad http rule %q: want "METHODS HOST[/PATH]", e.g. "GET,HEAD api.example.com/v1/**" or "* .example.com"`, s)
	}
	var hp httpPat
	if f[0] != "*" {
		for _, m := range strings.Split(f[0], ",") {
			if !isToken(m) || strings.Contains(m, "*") {
				return httpPat{}, fmt.Errorf(`bad method %q in %q (want "*" or a list of methods such as "GET,HEAD")`, m, s)
			}
			if m = strings.ToUpper(m); !slices.Contains(hp.methods, m) {
				hp.methods = append(hp.methods, m)
			}
		}
	}
	hostPart, pathPart := f[1], ""
	if i := strings.IndexByte(f[1], '/'); i >= 0 {
		hostPart, pathPart = f[1][:i], f[1][i:]
	}
	if strings.Count(hostPart, ":") == 1 || strings.Contains(hostPart, "]:") {
		return httpPat{}, fmt.Errorf("port in %q: use the rule's ports option", hostPart)
	}
	if isIPPattern(hostPart) {
		return httpPat{}, fmt.Errorf("IP literal %q in an http rule (http rules name hosts)", hostPart)
	}
	pt, err := parsePattern(hostPart)
	if err != nil {
		return httpPat{}, err
	}
	hp.host = pt
	if pathPart != "" {
		if hp.glob, err = compileGlob(pathPart); err != nil {
			return httpPat{}, err
		}
	}
	methods := "*"
	if hp.methods != nil {
		methods = strings.Join(hp.methods, ",")
	}
	hp.text = methods + " " + hostPart + pathPart
	return hp, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// httpEntry is one compiled http rule pattern; its decision is built at
// load, so deciding never allocates.
type httpEntry struct {
	kind      uint8
	deny      bool
	hold      *Hold // an approve entry's
	important bool
	methods   []string // nil: every method
	glob      *glob    // nil: every path
	src       int
	d         Decision
}

// HTTPRules is the compiled http section: Engine.HTTP returns it.
type HTTPRules struct {
	e        *Engine
	byName   map[string][]httpEntry // entries by host pattern name
	dflt     Decision               // no http rule matched
	trace    Decision               // builtin:trace
	override Decision               // builtin:method-override
	order    []httpRef              // every pattern in policy order, for Warnings
}

// HTTP returns the compiled http section.
func (e *Engine) HTTP() *HTTPRules { return &e.http }

// httpRef is one http rule pattern as written, for Warnings.
type httpRef struct {
	host pattern
	text string
	src  int
}

func (c *compiler) compileHTTP() error {
	e, pol := c.e, c.pol
	e.http.dflt = Decision{Action: Allow, Rule: "http:default", Source: pol.file, Reason: "no http rule matched"}
	e.http.trace = Decision{Action: Deny, Report: pol.report, Rule: "builtin:trace", Source: pol.file,
		Reason: "TRACE and TRACK are denied unless an http rule naming the method allows it"}
	e.http.override = Decision{Action: Deny, Report: pol.report, Rule: "builtin:method-override", Source: pol.file,
		Reason: "a method override header's value is not an HTTP method"}
	for _, r := range pol.http {
		si, err := c.ruleSource(r.line, r.opts)
		if err != nil {
			return err
		}
		s := &e.sources[si]
		for _, hp := range r.pats {
			d := Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
			verb := "allowed"
			if r.deny {
				d.Action, d.Report, verb = Deny, s.report, "denied"
			}
			d.Reason = "request " + verb + " by " + s.label + " (" + hp.text + ")"
			if r.hold != nil {
				d.Action, d.Hold = Approve, r.hold
				d.Reason = holdReason("request", s.label, hp.text, r.hold)
			}
			if e.http.byName == nil {
				e.http.byName = map[string][]httpEntry{}
			}
			e.http.byName[hp.host.name] = append(e.http.byName[hp.host.name], httpEntry{
				kind: hp.host.kind, deny: r.deny, hold: r.hold, important: r.opts.important,
				methods: hp.methods, glob: hp.glob, src: si, d: d,
			})
			e.http.order = append(e.http.order, httpRef{host: hp.host, text: hp.text, src: si})
			e.stats.HTTPRules++
		}
	}
	return nil
}

// Request is one HTTP request to decide.
type Request struct {
	Agent string
	// Host is the request's canonical host, with its port.
	Host addr.Host
	// Method is the request method as sent (compared without regard to
	// case).
	Method string
	// Path is the decoded URL path (net/http's URL.Path); rules match it
	// cleaned (see cleanPath).
	Path string
	// Overrides are the values of the method override headers
	// (OverrideHeaders), as sent, one per header line. A server or
	// framework that honours them executes that method instead of
	// Method, so each is decided as the method too.
	Overrides []string
}

// OverrideHeaders names the headers whose values Request.Overrides
// carries: the method override headers servers and frameworks honour, in
// canonical form. It is an array, so asking costs no allocation and no
// caller can change another's copy.
func OverrideHeaders() [3]string {
	return [3]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}
}

// Request decides one HTTP request: every request agentg decides, plain
// http:// and inside intercepted tunnels alike. The host rules are not
// consulted: the caller asks Host first.
//
// Candidates are the rules that apply to the agent and port, list the
// method and whose host pattern and path glob match. The most specific
// wins: by host (as for host rules), then by path (glob rank; no path is
// least specific); on a tie deny wins; an important deny beats any
// allow. No candidate: Allow, rule "http:default". TRACE and TRACK are
// denied as "builtin:trace" unless an allow rule that names the method
// wins: an allow for "*" methods does not open them.
//
// Paths are matched so that a deny cannot be stepped around by a
// spelling the server treats as the same path, and an allow never widens:
//
//   - A deny rule's glob matches without regard to case ("/REPOS/x" is
//     denied by "/repos/**"), and each segment whole or with its ";..."
//     parameters stripped ("/repos;a/x"). An allow rule's glob matches the
//     path as sent, case and parameters included.
//   - When stripping parameters changes the path's shape
//     ("/public/..;/admin", which such servers read as "/admin"), deny
//     rules match either reading and allow rules must match both.
//
// Each value of q.Overrides is decided as the method too, and the
// request gets the strictest answer (a Deny over a report over an Allow;
// the method's own answer first among equals), with the rule that gave
// it. An override that is not an HTTP method token is denied as
// "builtin:method-override".
func (hr *HTTPRules) Request(q Request) Decision {
	rp := reqPath{raw: q.Path}
	d := hr.requestDecide(q.Agent, q.Host, q.Method, &rp)
	for _, o := range q.Overrides {
		if severity(d) == 3 {
			break
		}
		if strings.EqualFold(o, q.Method) {
			continue
		}
		od := hr.override
		if isToken(o) {
			od = hr.requestDecide(q.Agent, q.Host, o, &rp)
		}
		if severity(od) > severity(d) {
			d = od
			if od.Rule != "builtin:method-override" {
				d.Reason = "method override " + o + ": " + od.Reason
			}
		}
	}
	return d
}

// severity orders decisions for Request's overrides: 0 an Allow, 1 a
// Deny that report mode lets through, 2 an Approve (held), 3 anything
// refused.
func severity(d Decision) int {
	switch {
	case d.Action == Allow:
		return 0
	case d.Allowed():
		return 1
	case d.Action == Approve:
		return 2
	}
	return 3
}

// reqPath is a request's path, cleaned once when a rule first needs it.
type reqPath struct {
	raw   string
	ready bool
	p     string // cleaned
	alt   string // paramReading(p), "" when it has p's shape
}

func (rp *reqPath) get() (p, alt string) {
	if !rp.ready {
		rp.p = cleanPath(rp.raw)
		rp.alt = paramReading(rp.p)
		rp.ready = true
	}
	return rp.p, rp.alt
}

// matches reports whether the entry's glob matches the path, as Request
// documents: loosely for a deny or an approve, as sent for an allow.
func (en *httpEntry) matches(rp *reqPath) bool {
	p, alt := rp.get()
	if en.deny || en.hold != nil {
		return en.glob.matchLoose(p) || alt != "" && en.glob.matchLoose(alt)
	}
	return en.glob.match(p) && (alt == "" || en.glob.match(alt))
}

func (hr *HTTPRules) requestDecide(agent string, h addr.Host, method string, rp *reqPath) Decision {
	e := hr.e
	trace := strings.EqualFold(method, "TRACE") || strings.EqualFold(method, "TRACK")
	if len(hr.byName) == 0 || h.IsIP() {
		return hr.none(trace)
	}
	name := h.Name
	var best, imp *httpEntry
	bestH, bestP, impH, impP := -1, -2, -1, -2
	for i := range suffixes(name) {
		es := hr.byName[name[i:]]
		for j := range es {
			en := &es[j]
			hr, ok := suffixRank(name, i, en.kind)
			if !ok || !en.hasMethod(method, trace) || !e.sources[en.src].applies(agent, h.Port) {
				continue
			}
			pr := -1
			if en.glob != nil {
				if !en.matches(rp) {
					continue
				}
				pr = en.glob.rank
			}
			if hr > bestH || hr == bestH && (pr > bestP || pr == bestP && en.verb().rank() > best.verb().rank()) {
				best, bestH, bestP = en, hr, pr
			}
			if en.important && (hr > impH || hr == impH && pr > impP) {
				imp, impH, impP = en, hr, pr
			}
		}
	}
	switch {
	case best == nil:
		return hr.none(trace)
	case !best.deny && imp != nil:
		return imp.d
	}
	return best.d
}

func (en *httpEntry) verb() verb {
	switch {
	case en.deny:
		return verbDeny
	case en.hold != nil:
		return verbApprove
	}
	return verbAllow
}

func (hr *HTTPRules) none(trace bool) Decision {
	if trace {
		return hr.trace
	}
	return hr.dflt
}

// hasMethod reports whether the entry covers method; for TRACE and TRACK
// an allow must name the method.
func (en *httpEntry) hasMethod(method string, trace bool) bool {
	if en.methods == nil {
		return !trace || en.deny
	}
	for _, m := range en.methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}
