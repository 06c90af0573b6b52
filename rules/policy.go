package rules

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// This file turns policy YAML into a checked, line-annotated model: the
// walk over the top-level keys (each dispatched to the section the
// table in sections.go registers for it), the policy-wide keys default
// and mode, the options every rule shares, and the small parsing
// helpers. Each section's own syntax is parsed in that section's file
// (hosts.go, ips.go, lists.go, agents.go, resolve.go, tunnel.go, http.go,
// ports.go, quotas.go; dns.go and mcp*.go with their own parser types).
// It walks yaml.v3 nodes instead of decoding into structs so that every
// error, even for a key that is merely misspelled, names the file and
// line a security team has to fix.

const maxPolicySize = 16 << 20

// policy is a parsed, checked policy file, before compilation.
type policy struct {
	file        string
	defaultDeny bool
	report      bool
	ports       []portRange
	portsLine   int
	agents      []agentSpec
	freeNames   bool // free_agent_names: true
	hosts       []hostRule
	ips         []ipRule
	lists       []listSpec
	resolve     resolveTable

	interceptAll bool
	intercept    []icRule
	passthrough  []icRule
	http         []httpRule
	mcp          *mcpSpec // nil: no mcp section
	dns          *dnsSpec // nil: no dns section
	quotas       []quotaSpec

	// specs holds, by key, the parsed form of a section that has no
	// field above (see sections.go).
	specs slots
	lang  *language // the sections it was parsed with, to compile it
}

// parser carries the file name into every error.
type parser struct{ file string }

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("load policy %s:%d: %s", p.file, n.Line, fmt.Sprintf(format, args...))
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func parsePolicy(file string, data []byte) (*policy, error) {
	return policyLanguage.parse(file, data)
}

// parse reads a policy in the language l.
func (l *language) parse(file string, data []byte) (*policy, error) {
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("load policy %s: file of %d bytes is larger than %d", file, len(data), maxPolicySize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "alphabetic or numeric") || strings.Contains(msg, "unknown anchor") {
			msg += ` (a pattern starting with * must be quoted: "*.example.com")`
		}
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("load policy %s:%s: %s", file, m[1], msg[len(m[0]):])
		}
		return nil, fmt.Errorf("load policy %s: %s", file, msg)
	}
	ps := &parser{file: file}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("load policy %s:1: empty policy", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, ps.errf(root, "policy must be a mapping of keys (%s)", l.keys(""))
	}
	pol := &policy{file: file, defaultDeny: true, lang: l}
	err := ps.eachKey(root, func(k, v *yaml.Node) error {
		sec, ok := l.section(k.Value)
		if !ok {
			return ps.errf(k, "unknown key %q (want %s)", k.Value, l.keys("or"))
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && !sec.nullValue {
			return nil // an empty section ("hosts:" with nothing under it)
		}
		return sec.parse(ps, k, v, pol)
	})
	if err != nil {
		return nil, err
	}
	return pol, nil
}

// The policy-wide keys: what no rule matched gets, and enforce or report.
func init() {
	register(section{key: "default", rank: rankDefault, nullValue: true,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) error {
			s, err := p.oneOf(v, "allow", "deny")
			pol.defaultDeny = s == "deny"
			return err
		}})
	register(section{key: "mode", rank: rankMode, nullValue: true,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) error {
			s, err := p.oneOf(v, "enforce", "report")
			pol.report = s == "report"
			return err
		}})
}

// ruleOpts are the options every host rule, CIDR rule, http rule and list
// shares.
type ruleOpts struct {
	agents    []string    // nil: every agent
	ports     []portRange // nil: every port
	mode      string      // "", "enforce" or "report"
	important bool
	id        string // explicit id (rules) or id prefix (lists)
}

// ruleBody parses the allow/deny key and the shared options of a rule
// mapping; extra, when not nil, is offered every other key first.
func (p *parser) ruleBody(it *yaml.Node, extra func(k, v *yaml.Node) (bool, error)) (deny bool, val *yaml.Node, o ruleOpts, err error) {
	vb, val, _, o, err := p.ruleVerdict(it, extra, false)
	return vb == verbDeny, val, o, err
}

// ruleVerdict is ruleBody for the rules that may also approve (tool and
// http rules, holdOK): it parses allow, deny or approve, and an approve
// rule's timeout and via into its Hold.
func (p *parser) ruleVerdict(it *yaml.Node, extra func(k, v *yaml.Node) (bool, error), holdOK bool) (vb verb, val *yaml.Node, hold *Hold, o ruleOpts, err error) {
	var hk holdKeys
	err = p.eachKey(it, func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "id-prefix":
			return p.errf(k, "id-prefix belongs to lists; rules take id")
		case "allow", "deny", "approve":
			if k.Value == "approve" && !holdOK {
				return p.errf(k, "approve applies to tool rules (mcp tools) and http rules only")
			}
			if val != nil {
				if holdOK {
					return p.errf(k, "a rule has exactly one of allow, deny or approve")
				}
				return p.errf(k, "a rule has exactly one of allow or deny")
			}
			val = v
			switch k.Value {
			case "deny":
				vb = verbDeny
			case "approve":
				vb = verbApprove
			}
		default:
			var ok bool
			if ok, err = p.option(k, v, &o); !ok && err == nil {
				if holdOK && hk.take(k, v) {
					return nil
				}
				if extra != nil {
					ok, err = extra(k, v)
				}
				if !ok && err == nil {
					err = p.errf(k, "unknown rule key %q (want allow or deny, important, agents, ports, mode, id)", k.Value)
				}
			}
		}
		return err
	})
	if err == nil && val == nil {
		if holdOK {
			err = p.errf(it, "rule without allow, deny or approve")
		} else {
			err = p.errf(it, "rule without allow or deny")
		}
	}
	if err == nil {
		hold, err = p.hold(it, vb, o, hk)
	}
	if err == nil && o.important && vb != verbDeny {
		err = p.errf(it, "important applies to deny rules only")
	}
	return vb, val, hold, o, err
}

// option parses one of the options shared by rules and lists; ok is false
// when k is not one of them.
func (p *parser) option(k, v *yaml.Node, o *ruleOpts) (ok bool, err error) {
	switch k.Value {
	case "important":
		o.important, err = p.boolean(v)
	case "agents":
		its, e := p.items(v)
		if e != nil {
			return true, e
		}
		for _, a := range its {
			if !validName(a.Value) {
				return true, p.errf(a, "bad agent name %q", a.Value)
			}
			o.agents = append(o.agents, a.Value)
		}
	case "ports":
		o.ports, err = p.ports(v)
	case "mode":
		o.mode, err = p.oneOf(v, "enforce", "report")
	case "id", "id-prefix":
		if o.id, err = p.scalar(v); err == nil && !validName(o.id) {
			err = p.errf(v, "bad %s %q (printable, no spaces, at most 64 bytes)", k.Value, o.id)
		}
	default:
		return false, nil
	}
	return true, err
}

// eachKey walks a mapping, refusing duplicate keys: YAML parsers disagree on
// which duplicate wins, so a policy that has one means two things.
func (p *parser) eachKey(m *yaml.Node, fn func(k, v *yaml.Node) error) error {
	if m.Kind != yaml.MappingNode {
		return p.errf(m, "expected a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errf(k, "keys must be plain strings")
		}
		if seen[k.Value] {
			return p.errf(k, "duplicate key %q", k.Value)
		}
		seen[k.Value] = true
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, "expected a single value")
	}
	return n.Value, nil
}

func (p *parser) oneOf(n *yaml.Node, choices ...string) (string, error) {
	s, err := p.scalar(n)
	if err != nil {
		return "", err
	}
	for _, c := range choices {
		if s == c {
			return s, nil
		}
	}
	return "", p.errf(n, "%q is not one of %s", s, strings.Join(choices, ", "))
}

func (p *parser) boolean(n *yaml.Node) (bool, error) {
	switch n.Value {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, p.errf(n, "expected true or false, got %q", n.Value)
}

// items returns the elements of a sequence, or the node itself when it is a
// single scalar, so `deny: x` and `deny: [x, y]` both work.
func (p *parser) items(n *yaml.Node) ([]*yaml.Node, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return []*yaml.Node{n}, nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, p.errf(c, "expected a single value in the list")
			}
		}
		if len(n.Content) == 0 {
			return nil, p.errf(n, "empty list")
		}
		return n.Content, nil
	}
	return nil, p.errf(n, "expected a value or a list of values")
}

// validName reports whether s can name an agent or a rule id: printable,
// no spaces, at most 64 bytes. Such names end up in logs and headers.
func validName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// pathGlob parses a path glob value (a binding's, an llm host's path:),
// errors at its line.
func (p *parser) pathGlob(v *yaml.Node) (*glob, error) {
	s, err := p.scalar(v)
	if err != nil {
		return nil, err
	}
	g, err := compileGlob(s)
	if err != nil {
		return nil, p.errf(v, "%v", err)
	}
	return g, nil
}

// namePatterns parses a host-name pattern or list of them (a binding's,
// an llm host entry's host:). IP literals are refused: these name hosts,
// and where names the place in the error ("IP literal %q in WHERE").
func (p *parser) namePatterns(v *yaml.Node, where string) ([]pattern, error) {
	its, err := p.items(v)
	if err != nil {
		return nil, err
	}
	out := make([]pattern, 0, len(its))
	for _, n := range its {
		if isIPPattern(n.Value) {
			return nil, p.errf(n, "IP literal %q in %s", n.Value, where)
		}
		pt, err := parsePattern(n.Value)
		if err != nil {
			return nil, p.errf(n, "%v", err)
		}
		out = append(out, pt)
	}
	return out, nil
}
