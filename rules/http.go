package rules

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

// TLS interception policy (intercept, passthrough) and HTTP rules: the
// policy for what happens inside an intercepted tunnel.

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
	pats []httpPat
	opts ruleOpts
}

// icRule is one intercept or passthrough entry.
type icRule struct {
	line     int
	patterns []pattern
	agents   []string    // nil: every agent
	ports    []portRange // nil: every port
}

func (p *parser) httpRules(n *yaml.Node) ([]httpRule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "http must be a list of rules")
	}
	var out []httpRule
	for _, it := range n.Content {
		deny, val, o, err := p.ruleBody(it, nil)
		if err != nil {
			return nil, err
		}
		vals, err := p.items(val)
		if err != nil {
			return nil, err
		}
		r := httpRule{line: it.Line, deny: deny, opts: o}
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

// isIPPattern reports whether a would-be host pattern is an IP literal,
// so that the error can say what to do instead.
func isIPPattern(s string) bool {
	rest := strings.TrimPrefix(strings.TrimPrefix(s, "*."), ".")
	h, err := addr.Canonical(rest)
	return err == nil && h.IsIP() || err != nil && isIPish(rest)
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

// interceptRules parses the intercept or passthrough section: "all"
// (intercept only), or a list whose items are host patterns or mappings
// {host: PATTERN or [PATTERN...], agents: [...], ports: [...]}.
func (p *parser) interceptRules(k, n *yaml.Node) (all bool, out []icRule, err error) {
	what := k.Value
	if n.Kind == yaml.ScalarNode {
		if what == "intercept" && n.Value == "all" {
			return true, nil, nil
		}
		if what == "intercept" {
			return false, nil, p.errf(n, `intercept must be "all" or a list of host patterns, not %q`, n.Value)
		}
		return false, nil, p.errf(n, "passthrough must be a list of host patterns, not %q", n.Value)
	}
	if n.Kind != yaml.SequenceNode {
		return false, nil, p.errf(n, "%s must be a list of host patterns", what)
	}
	for _, it := range n.Content {
		r := icRule{line: it.Line}
		var pats []*yaml.Node
		switch it.Kind {
		case yaml.ScalarNode:
			pats = []*yaml.Node{it}
		case yaml.MappingNode:
			var o ruleOpts
			err := p.eachKey(it, func(k, v *yaml.Node) error {
				var err error
				switch k.Value {
				case "host":
					pats, err = p.items(v)
				case "agents", "ports":
					_, err = p.option(k, v, &o)
				default:
					err = p.errf(k, "unknown %s key %q (want host, agents, ports)", what, k.Value)
				}
				return err
			})
			if err != nil {
				return false, nil, err
			}
			if pats == nil {
				return false, nil, p.errf(it, "%s entry without a host", what)
			}
			r.agents, r.ports = o.agents, o.ports
		default:
			return false, nil, p.errf(it, "expected a host pattern or {host: PATTERN, agents: [...]}")
		}
		for _, pn := range pats {
			if pn.Value == "all" {
				return false, nil, p.errf(pn, `"all" in a list would be a host named all; write "intercept: all" (no list) to intercept every tunnel`)
			}
			if isIPPattern(pn.Value) {
				return false, nil, p.errf(pn, `IP literal %q in %s (tunnels to IP literals are intercepted only by "intercept: all")`, pn.Value, what)
			}
			pt, err := parsePattern(pn.Value)
			if err != nil {
				return false, nil, p.errf(pn, "%v", err)
			}
			r.patterns = append(r.patterns, pt)
		}
		out = append(out, r)
	}
	return false, out, nil
}

// httpEntry is one compiled http rule pattern; its decision is built at
// load, so deciding never allocates.
type httpEntry struct {
	kind      uint8
	deny      bool
	important bool
	methods   []string // nil: every method
	glob      *glob    // nil: every path
	src       int
	d         Decision
}

// icEntry is one compiled intercept or passthrough pattern.
type icEntry struct {
	kind   uint8
	pass   bool
	agents []string
	ports  []portRange
	id     string
}

func (e *Engine) compileHTTP(pol *policy, ruleSource func(int, ruleOpts) (int, error)) error {
	e.httpDflt = Decision{Action: Allow, Rule: "http:default", Source: pol.file, Reason: "no http rule matched"}
	e.traceDeny = Decision{Action: Deny, Report: pol.report, Rule: "builtin:trace", Source: pol.file,
		Reason: "TRACE and TRACK are denied unless an http rule naming the method allows it"}
	for _, r := range pol.http {
		si, err := ruleSource(r.line, r.opts)
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
			if e.http == nil {
				e.http = map[string][]httpEntry{}
			}
			e.http[hp.host.name] = append(e.http[hp.host.name], httpEntry{
				kind: hp.host.kind, deny: r.deny, important: r.opts.important,
				methods: hp.methods, glob: hp.glob, src: si, d: d,
			})
			e.stats.HTTPRules++
		}
	}

	e.interceptAll = pol.interceptAll
	e.stats.InterceptAll = pol.interceptAll
	add := func(rs []icRule, pass bool, n *int) {
		for _, r := range rs {
			id := fmt.Sprintf("%s:%d", pol.file, r.line)
			if pass {
				id = "passthrough " + id
			}
			for _, pt := range r.patterns {
				if e.icpt == nil {
					e.icpt = map[string][]icEntry{}
				}
				e.icpt[pt.name] = append(e.icpt[pt.name], icEntry{kind: pt.kind, pass: pass, agents: r.agents, ports: r.ports, id: id})
				*n++
			}
		}
	}
	add(pol.intercept, false, &e.stats.InterceptRules)
	add(pol.passthrough, true, &e.stats.PassthroughRules)
	return nil
}

// suffixRank is the specificity of a pattern of kind stored under
// name[i:] for the host name, as for host rules: the longer the matching
// suffix the more specific, and at the full host exact beats ".name".
func suffixRank(name string, i int, kind uint8) (int, bool) {
	rank := (len(name) - i) * 2
	switch kind {
	case kindExact:
		if i != 0 {
			return 0, false
		}
		rank++
	case kindSub:
		if i == 0 {
			return 0, false
		}
	}
	return rank, true
}

// Intercept reports whether a CONNECT tunnel to h should be intercepted
// (TLS terminated by agentg) for agent, and the id of what decided it:
// "passthrough <file>:<line>" when a passthrough entry matches (it wins
// over intercept, including "intercept: all"), "<file>:<line>" of the
// most specific matching intercept entry, "intercept:all", or "" when
// nothing intercepts the host. IP literals match only "intercept: all".
func (e *Engine) Intercept(agent string, h addr.Host) (bool, string) {
	if len(e.icpt) > 0 && !h.IsIP() {
		name := h.Name
		var ic, pass *icEntry
		icRank, passRank := -1, -1
		for i := 0; i < len(name); i++ {
			if i > 0 && name[i-1] != '.' {
				continue
			}
			es := e.icpt[name[i:]]
			for j := range es {
				en := &es[j]
				rank, ok := suffixRank(name, i, en.kind)
				if !ok || en.agents != nil && !slices.Contains(en.agents, agent) || !portsContain(en.ports, h.Port) {
					continue
				}
				if en.pass {
					if rank > passRank {
						pass, passRank = en, rank
					}
				} else if rank > icRank {
					ic, icRank = en, rank
				}
			}
		}
		switch {
		case pass != nil:
			return false, pass.id
		case ic != nil:
			return true, ic.id
		}
	}
	if e.interceptAll {
		return true, "intercept:all"
	}
	return false, ""
}

// HTTP decides one request inside an intercepted tunnel to h (canonical,
// with its port). method is the request method as sent (compared without
// regard to case); path is the decoded URL path (net/http's URL.Path),
// matched after cleaning (see cleanPath). The host rules are not consulted:
// the caller asks Host first.
//
// Candidates are the rules that apply to agent and port, list the method
// and whose host pattern and path glob match. The most specific wins: by
// host (as for host rules), then by path (glob rank; no path is least
// specific); on a tie deny wins; an important deny beats any allow. No
// candidate: Allow, rule "http:default". TRACE and TRACK are denied as
// "builtin:trace" unless an allow rule that names the method wins: an
// allow for "*" methods does not open them.
func (e *Engine) HTTP(agent string, h addr.Host, method, path string) Decision {
	trace := strings.EqualFold(method, "TRACE") || strings.EqualFold(method, "TRACK")
	if len(e.http) == 0 || h.IsIP() {
		return e.httpNone(trace)
	}
	name := h.Name
	var best, imp *httpEntry
	bestH, bestP, impH, impP := -1, -2, -1, -2
	cleaned := false
	for i := 0; i < len(name); i++ {
		if i > 0 && name[i-1] != '.' {
			continue
		}
		es := e.http[name[i:]]
		for j := range es {
			en := &es[j]
			hr, ok := suffixRank(name, i, en.kind)
			if !ok || !en.hasMethod(method, trace) || !e.sources[en.src].applies(agent, h.Port) {
				continue
			}
			pr := -1
			if en.glob != nil {
				if !cleaned {
					path, cleaned = cleanPath(path), true
				}
				if !en.glob.match(path) {
					continue
				}
				pr = en.glob.rank
			}
			if hr > bestH || hr == bestH && (pr > bestP || pr == bestP && en.deny && !best.deny) {
				best, bestH, bestP = en, hr, pr
			}
			if en.important && (hr > impH || hr == impH && pr > impP) {
				imp, impH, impP = en, hr, pr
			}
		}
	}
	switch {
	case best == nil:
		return e.httpNone(trace)
	case !best.deny && imp != nil:
		return imp.d
	}
	return best.d
}

func (e *Engine) httpNone(trace bool) Decision {
	if trace {
		return e.traceDeny
	}
	return e.httpDflt
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
