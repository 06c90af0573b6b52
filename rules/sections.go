package rules

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The section table: every top-level key of a policy is one entry,
// registered by the file that owns it (hosts.go registers hosts:,
// mcp.go registers mcp:, ...). parsePolicy dispatches on the table and
// compile runs the table's steps, so a new section (credentials:, llm:,
// gateway:) is one new file that calls register from an init function:
//
//	func init() {
//		register(section{key: "llm", rank: 160, parse: parseLLM,
//			steps: []step{{phase: phaseRules, at: 70, run: compileLLM}}})
//	}
//
// A section without a field of its own in policy and Engine keeps its
// parsed form in policy.specs and its compiled form in Engine.views,
// both keyed by its key (pol.specs.set in parse, c.e.views.set in its
// step), and gives Engine one accessor that returns the compiled view
// (as MCP, DNS and HTTP do). TestSectionPlugsIn shows one.
//
// The table is written only by init functions, before main runs, and
// read-only after: it is the package's static description of the policy
// language, not state.

// section is one top-level policy key.
type section struct {
	key string
	// rank places the key in the key list errors print, lowest first.
	rank int
	// nullValue: parse is called for a null value too ("default:" is
	// an error); otherwise a key with nothing under it is skipped, as
	// an empty section.
	nullValue bool
	// parse reads the key's value into pol. k is the key node, for its
	// line.
	parse func(p *parser, k, v *yaml.Node, pol *policy) error
	// steps compile what parse read into the engine; a section with two
	// keys (intercept and passthrough) registers its steps once.
	steps []step
}

// phase orders compile steps: every phaseNames step adds to the name
// table before it is packed; phaseRules steps run after.
type phase int

const (
	phaseNames phase = iota
	phaseRules
)

// step is one compile step of a section. at orders the steps of one
// phase: rule ids are checked for duplicates, and rule sources are
// numbered, in this order.
type step struct {
	phase phase
	at    int
	run   func(c *compiler) error
}

// The ranks of the sections, in the order the policy language lists its
// keys.
const (
	rankDefault = (iota + 1) * 10
	rankMode
	rankPorts
	rankAgents
	rankFreeNames
	rankHosts
	rankIPs
	rankLists
	rankResolve
	rankIntercept
	rankPassthrough
	rankHTTP
	rankMCP
	rankDNS
	rankQuotas
	rankCredentials
)

// language is a set of sections: the policy language. The package's
// is policyLanguage; a test builds its own to show a section plugging in.
type language struct {
	sections []section // by rank
	steps    []step    // by phase, then at
}

// policyLanguage is the table the init functions fill.
var policyLanguage language

// register adds a section to the policy language.
func register(s section) { policyLanguage.register(s) }

// register adds a section to l. It panics on a duplicate key: two files
// claiming one key is a programming error found at start-up.
func (l *language) register(s section) {
	if slices.ContainsFunc(l.sections, func(o section) bool { return o.key == s.key }) {
		panic("rules: section " + s.key + " registered twice")
	}
	i, _ := slices.BinarySearchFunc(l.sections, s.rank, func(o section, r int) int { return o.rank - r })
	l.sections = slices.Insert(l.sections, i, s)
	for _, st := range s.steps {
		j, _ := slices.BinarySearchFunc(l.steps, st, func(o, n step) int {
			if o.phase != n.phase {
				return int(o.phase) - int(n.phase)
			}
			return o.at - n.at
		})
		// After every step of the same place: registration order.
		for j < len(l.steps) && l.steps[j].phase == st.phase && l.steps[j].at == st.at {
			j++
		}
		l.steps = slices.Insert(l.steps, j, st)
	}
}

// section returns the section registered for key.
func (l *language) section(key string) (*section, bool) {
	for i := range l.sections {
		if l.sections[i].key == key {
			return &l.sections[i], true
		}
	}
	return nil, false
}

// keys lists the keys for an error, the last joined by last ("a, b or
// c"); last "" joins every key with ", ".
func (l *language) keys(last string) string {
	keys := make([]string, len(l.sections))
	for i, s := range l.sections {
		keys[i] = s.key
	}
	if last == "" || len(keys) < 2 {
		return strings.Join(keys, ", ")
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " " + last + " " + keys[len(keys)-1]
}

// runSteps runs the compile steps of one phase in order.
func (c *compiler) runSteps(ph phase) error {
	for _, st := range c.pol.lang.steps {
		if st.phase != ph {
			continue
		}
		if err := st.run(c); err != nil {
			return err
		}
	}
	return nil
}

// slots holds, by section key, the parsed (policy.specs) or compiled
// (Engine.views) form of a section that has no field of its own.
type slots map[string]any

func (s *slots) set(key string, v any) {
	if *s == nil {
		*s = slots{}
	}
	(*s)[key] = v
}

func (s slots) get(key string) any { return s[key] }
