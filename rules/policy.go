package rules

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// This file turns policy YAML into a checked, line-annotated model. It walks
// yaml.v3 nodes instead of decoding into structs so that every error, even
// for a key that is merely misspelled, names the file and line a security
// team has to fix.

const maxPolicySize = 16 << 20

type portRange struct{ lo, hi uint16 }

// portsContain reports whether p is in rs; a nil rs means every port.
func portsContain(rs []portRange, p uint16) bool {
	if rs == nil {
		return true
	}
	for _, r := range rs {
		if p >= r.lo && p <= r.hi {
			return true
		}
	}
	return false
}

// ruleOpts are the options every host rule, CIDR rule and list shares.
type ruleOpts struct {
	agents    []string    // nil: every agent
	ports     []portRange // nil: every port
	mode      string      // "", "enforce" or "report"
	important bool
	id        string // explicit id (rules) or id prefix (lists)
}

type pattern struct {
	name string
	kind uint8
}

type hostRule struct {
	line     int
	deny     bool
	patterns []pattern
	opts     ruleOpts
}

type ipRule struct {
	line     int
	deny     bool
	prefixes []netip.Prefix
	opts     ruleOpts
}

type listSpec struct {
	line   int
	path   string
	format string
	deny   bool
	opts   ruleOpts
}

type agentSpec struct {
	name     string
	password string
	hasPass  bool
	cidrs    []netip.Prefix
}

type policy struct {
	file        string
	defaultDeny bool
	report      bool
	ports       []portRange
	portsLine   int
	agents      []agentSpec
	hosts       []hostRule
	ips         []ipRule
	lists       []listSpec
	resolve     map[string][]netip.Addr

	interceptAll bool
	intercept    []icRule
	passthrough  []icRule
	http         []httpRule
}

// parser carries the file name into every error.
type parser struct{ file string }

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("load policy %s:%d: %s", p.file, n.Line, fmt.Sprintf(format, args...))
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func parsePolicy(file string, data []byte) (*policy, error) {
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
		return nil, ps.errf(root, "policy must be a mapping of keys (default, mode, ports, agents, hosts, ips, lists, resolve, intercept, passthrough, http)")
	}
	pol := &policy{file: file, defaultDeny: true}
	err := ps.eachKey(root, func(k, v *yaml.Node) error {
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && k.Value != "default" && k.Value != "mode" {
			return nil // an empty section ("hosts:" with nothing under it)
		}
		var err error
		switch k.Value {
		case "default":
			var s string
			if s, err = ps.oneOf(v, "allow", "deny"); err == nil {
				pol.defaultDeny = s == "deny"
			}
		case "mode":
			var s string
			if s, err = ps.oneOf(v, "enforce", "report"); err == nil {
				pol.report = s == "report"
			}
		case "ports":
			pol.ports, err = ps.ports(v)
			pol.portsLine = k.Line
		case "agents":
			pol.agents, err = ps.agents(v)
		case "hosts":
			pol.hosts, err = ps.hostRules(v)
		case "ips":
			pol.ips, err = ps.ipRules(v)
		case "lists":
			pol.lists, err = ps.lists(v)
		case "resolve":
			pol.resolve, err = ps.resolveTable(v)
		case "intercept":
			pol.interceptAll, pol.intercept, err = ps.interceptRules(k, v)
		case "passthrough":
			_, pol.passthrough, err = ps.interceptRules(k, v)
		case "http":
			pol.http, err = ps.httpRules(v)
		default:
			err = ps.errf(k, "unknown key %q (want default, mode, ports, agents, hosts, ips, lists, resolve, intercept, passthrough or http)", k.Value)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return pol, nil
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

func (p *parser) ports(n *yaml.Node) ([]portRange, error) {
	its, err := p.items(n)
	if err != nil {
		return nil, err
	}
	out := make([]portRange, 0, len(its))
	for _, it := range its {
		lo, hi, isRange := strings.Cut(it.Value, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := parsePort(strings.TrimSpace(lo))
		b, err2 := parsePort(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a > b {
			return nil, p.errf(it, "bad port or port range %q (want 1-65535 or \"lo-hi\")", it.Value)
		}
		out = append(out, portRange{a, b})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(v), nil
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
