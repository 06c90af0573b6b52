package rules

import (
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The mcp prompts and resources sub-sections: allow and deny rules for
// prompts/get (by "SERVER.PROMPT", matched and ranked exactly as tool
// patterns, with argument conditions) and resources/read (by server and
// URI glob), and MCPRules.Prompt and MCPRules.Resource, the questions the MCP
// guard asks about them. Without a prompts (resources) sub-section,
// prompts (resources) are not ruled: every one is allowed as rule
// "mcp:method". With one, mcp.default decides what no rule matches.

// PromptGet is one prompts/get to decide. Fields may be added; the zero
// value of a new field will mean what a request without it meant.
type PromptGet struct {
	Agent string
	// Server is the policy name of the server, as in ToolCall.
	Server string
	// Prompt is the prompt name as the server will read it.
	Prompt string
	// Args reads the request's arguments; nil means it has none.
	Args ArgLookup
}

// ResourceRead is one resources/read to decide. Fields may be added.
type ResourceRead struct {
	Agent  string
	Server string // the policy name of the server, as in ToolCall
	// URI is the resource URI as the server will read it (escapes in
	// the JSON decoded by the codec).
	URI string
}

// MaxURI is the longest resource URI Resource decides by its rules, in
// bytes; a longer one is denied as "builtin:resource-uri".
const MaxURI = 8192

// notRuled is the answer for prompts or resources when the policy has no
// sub-section for them.
var notRuled = Decision{Action: Allow, Rule: "mcp:method"}

// readsPolicy is the compiled prompts and resources sub-sections.
type readsPolicy struct {
	promptsRuled, resourcesRuled bool
	prompts                      toolTable // SERVER.PROMPT patterns, as tools
	resources                    []resEntry
	promptDefault, resDefault    Decision
}

// Prompt decides one prompts/get, by the rules and precedence of Tool:
// the most specific pattern wins, deny wins a tie, an important deny beats
// every allow, and nothing matching is mcp.default (rule "mcp:default").
func (m *MCPRules) Prompt(q PromptGet) Decision {
	e := m.e
	r := &m.reads
	if !r.promptsRuled {
		return notRuled
	}
	if len(q.Prompt) > MaxToolName {
		return Decision{Action: Deny, Report: e.report, Rule: "builtin:prompt-name", Source: e.file,
			Reason: "prompt name of " + strconv.Itoa(len(q.Prompt)) + " bytes is longer than " + strconv.Itoa(MaxToolName)}
	}
	call := ToolCall{Agent: q.Agent, Server: q.Server, Tool: q.Prompt, Args: q.Args}
	return m.patternDecide(&r.prompts, &call, r.promptDefault)
}

// Resource decides one resources/read. Candidates are the resource rules
// that apply to the agent, whose server pattern covers the server and
// whose URI glob covers the URI. A URI is read two ways: as sent, and
// normalised the way a server resolving it might (scheme and host in
// lower case, percent-escapes decoded, dot segments resolved, repeated
// slashes joined, file://localhost as file://). A deny covers a URI
// when its glob matches either reading, regardless of case; an allow
// only when it matches both exactly, so no spelling reaches past a deny
// or into an allow it does not name. Precedence is Tool's, ranked on
// "SERVER URI".
func (m *MCPRules) Resource(q ResourceRead) Decision {
	e := m.e
	r := &m.reads
	if !r.resourcesRuled {
		return notRuled
	}
	if len(q.URI) > MaxURI {
		return Decision{Action: Deny, Report: e.report, Rule: "builtin:resource-uri", Source: e.file,
			Reason: "resource URI of " + strconv.Itoa(len(q.URI)) + " bytes is longer than " + strconv.Itoa(MaxURI)}
	}
	canon := CanonicalURI(q.URI)
	var best, imp *resEntry
	for i := range r.resources {
		en := &r.resources[i]
		wins := best == nil || en.beats(best)
		impWins := en.important && (imp == nil || en.rank > imp.rank || en.rank == imp.rank && en.lits > imp.lits)
		if !wins && !impWins {
			continue
		}
		if !e.sources[en.src].appliesTo(q.Agent) || !en.matches(q.Server, q.URI, canon) {
			continue
		}
		if wins {
			best = en
		}
		if impWins {
			imp = en
		}
	}
	switch {
	case best == nil:
		return r.resDefault
	case !best.deny && imp != nil:
		return imp.d
	}
	return best.d
}

// CanonicalURI is the normalised reading of a resource URI that Resource
// matches beside the URI as sent. A URI net/url cannot parse, or an
// opaque one ("urn:..."), is its own canonical form.
func CanonicalURI(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Scheme == "" {
		return s
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(u.Scheme))
	b.WriteByte(':')
	host := strings.ToLower(u.Host)
	if u.Scheme == "file" && host == "localhost" {
		host = ""
	}
	if u.Host != "" || strings.HasPrefix(s[len(u.Scheme)+1:], "//") {
		b.WriteString("//")
		if u.User != nil {
			b.WriteString(u.User.String())
			b.WriteByte('@')
		}
		b.WriteString(host)
	}
	if p := u.Path; p != "" {
		clean := path.Clean(p)
		if strings.HasSuffix(p, "/") && clean != "/" {
			clean += "/"
		}
		b.WriteString(clean)
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		b.WriteString(u.RawQuery)
	}
	if u.Fragment != "" {
		b.WriteByte('#')
		b.WriteString(u.Fragment)
	}
	return b.String()
}

// patternDecide is toolDecide over any table of SERVER.NAME patterns.
func (m *MCPRules) patternDecide(t *toolTable, q *ToolCall, dflt Decision) Decision {
	e := m.e
	var best, imp *toolEntry
	for _, es := range [2][]toolEntry{t.byServer[q.Server], t.wild} {
		for i := range es {
			en := &es[i]
			wins := best == nil || en.beats(best)
			impWins := en.important && (imp == nil || en.pat.rank > imp.pat.rank || en.pat.rank == imp.pat.rank && en.pat.lits > imp.pat.lits)
			if !wins && !impWins {
				continue // cannot change the answer: skip its conditions
			}
			if !e.sources[en.src].appliesTo(q.Agent) || !en.pat.matches(q.Server, q.Tool, en.deny || en.hold != nil) || !condsHold(en.conds, q) {
				continue
			}
			if wins {
				best = en
			}
			if impWins {
				imp = en
			}
		}
	}
	switch {
	case best == nil:
		return dflt
	case !best.deny && imp != nil:
		return imp.d
	}
	return best.d
}

// promptRules parses the prompts sub-section: tool rules in all but name
// (SERVER.PROMPT patterns; when: takes arg conditions only, since prompts
// have no annotations).
func (p *mcpParser) promptRules(n *yaml.Node) ([]toolRule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.ps.errf(n, "mcp prompts must be a list of rules")
	}
	var out []toolRule
	for _, it := range n.Content {
		var conds []toolCond
		deny, val, o, err := p.ps.ruleBody(it, func(k, v *yaml.Node) (bool, error) {
			if k.Value != "when" {
				return true, p.ps.errf(k, "unknown prompt rule key %q (want allow or deny, agents, mode, important, id, when)", k.Value)
			}
			var err error
			if conds, err = p.toolConds(v); err != nil {
				return true, err
			}
			for _, c := range conds {
				if c.kind == condAnnotation {
					return true, p.ps.errf(v, "prompt rules take arg conditions only: prompts have no annotations")
				}
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if o.ports != nil {
			return nil, p.ps.errf(keyNode(it, "ports"), "ports do not apply to prompt rules (scope the server's url with ports instead)")
		}
		vals, err := p.ps.items(val)
		if err != nil {
			return nil, err
		}
		var pats []toolPat
		for _, v := range vals {
			tp, err := parseToolPat(v.Value)
			if err != nil {
				return nil, p.ps.errf(v, "%s", strings.Replace(strings.Replace(err.Error(), "tool pattern", "prompt pattern", 1), "SERVER.TOOL", "SERVER.PROMPT", 1))
			}
			pats = append(pats, tp)
		}
		out = append(out, toolRule{line: it.Line, deny: deny, pats: pats, conds: conds, opts: o})
	}
	return out, nil
}

func (c *compiler) compilePrompts(rs []toolRule) error {
	return c.compilePatterns(rs, &c.e.mcp.reads.prompts, "prompt", "prompt rule", &c.e.stats.PromptRules)
}

// resRule is one parsed resources rule.
type resRule struct {
	line    int
	deny    bool
	servers []string
	uris    []string // "*" when the rule has no uri
	opts    ruleOpts
}

// resEntry is one compiled (server, URI glob) pair of a resources rule.
type resEntry struct {
	server, uri     string
	serverWild      bool
	deny, important bool
	rank, lits      int // as toolPat's, on "SERVER URI"
	src             int
	d               Decision
	text            string
}

func (en *resEntry) matches(server, raw, canon string) bool {
	if en.serverWild {
		if !wildMatch(en.server, server) {
			return false
		}
	} else if en.server != server {
		return false
	}
	if en.deny {
		return wildMatchFold(en.uri, raw) || wildMatchFold(en.uri, canon)
	}
	return wildMatch(en.uri, raw) && wildMatch(en.uri, canon)
}

func (en *resEntry) beats(o *resEntry) bool {
	switch {
	case en.rank != o.rank:
		return en.rank > o.rank
	case en.lits != o.lits:
		return en.lits > o.lits
	}
	return en.deny && !o.deny
}

// resourceRules parses the resources sub-section:
//
//	resources:
//	  - deny: files              # server name(s) or globs ("*")
//	    uri: "file:///etc/*"     # URI glob(s); '*' is any run, '/' included; absent: every URI
func (p *mcpParser) resourceRules(n *yaml.Node) ([]resRule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.ps.errf(n, "mcp resources must be a list of rules")
	}
	var out []resRule
	for _, it := range n.Content {
		var uris []string
		deny, val, o, err := p.ps.ruleBody(it, func(k, v *yaml.Node) (bool, error) {
			if k.Value != "uri" {
				return true, p.ps.errf(k, "unknown resource rule key %q (want allow or deny, uri, agents, mode, important, id)", k.Value)
			}
			vals, err := p.ps.items(v)
			if err != nil {
				return true, err
			}
			for _, u := range vals {
				if err := checkURIGlob(u.Value); err != nil {
					return true, p.ps.errf(u, "%v", err)
				}
				uris = append(uris, u.Value)
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if o.ports != nil {
			return nil, p.ps.errf(keyNode(it, "ports"), "ports do not apply to resource rules (scope the server's url with ports instead)")
		}
		vals, err := p.ps.items(val)
		if err != nil {
			return nil, err
		}
		var servers []string
		for _, v := range vals {
			s := v.Value
			if s == "" {
				return nil, p.ps.errf(v, "empty server name in a resource rule (want a server name from mcp servers, or a glob such as \"*\")")
			}
			for i := 0; i < len(s); i++ {
				if c := s[i]; !isServerByte(c) && c != '*' {
					return nil, p.ps.errf(v, "bad server %q in a resource rule: a server name is letters, digits, '_' and '-' (or '*'); the URI goes in uri:", s)
				}
			}
			servers = append(servers, s)
		}
		if len(uris) == 0 {
			uris = []string{"*"}
		}
		out = append(out, resRule{line: it.Line, deny: deny, servers: servers, uris: uris, opts: o})
	}
	return out, nil
}

func checkURIGlob(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty uri glob (leave uri out to cover every URI)")
	case len(s) > MaxURI:
		return fmt.Errorf("uri glob longer than %d bytes", MaxURI)
	case !utf8.ValidString(s):
		return fmt.Errorf("uri glob %q is not UTF-8", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == ' ' {
			return fmt.Errorf("uri glob %q has a space or control character", s)
		}
	}
	return nil
}

func (c *compiler) compileResources(rs []resRule) error {
	e := c.e
	r := &e.mcp.reads
	for _, rr := range rs {
		si, err := c.ruleSource(rr.line, rr.opts)
		if err != nil {
			return err
		}
		s := &e.sources[si]
		for _, server := range rr.servers {
			for _, uri := range rr.uris {
				text := server + " " + uri
				en := resEntry{server: server, serverWild: strings.Contains(server, "*"), uri: uri,
					deny: rr.deny, important: rr.opts.important, src: si, text: text}
				if k := strings.IndexByte(text, '*'); k < 0 {
					en.rank = 2*len(text) + 1
				} else {
					en.rank = 2 * k
				}
				en.lits = len(text) - strings.Count(text, "*") - 1
				en.d = Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
				verb := "allowed"
				if rr.deny {
					en.d.Action, en.d.Report, verb = Deny, s.report, "denied"
				}
				en.d.Reason = "resource read " + verb + " by " + s.label + " (" + text + ")"
				r.resources = append(r.resources, en)
				if !en.serverWild {
					c.e.mcp.tools.order = append(c.e.mcp.tools.order,
						toolRef{server: server, where: s.where, what: "resource rule " + s.ruleID, text: text})
				}
				e.stats.ResourceRules++
			}
		}
	}
	return nil
}
