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
//		register(section{key: "llm", rank: rankLLM, parse: parseLLM,
//			steps: []step{{phase: phaseRules, at: 70, run: compileLLM}}})
//	}
//
// A section without a field of its own in policy and Engine keeps its
// parsed form in policy.specs and its compiled form in Engine.views,
// both keyed by its key, and gives Engine one accessor that returns the
// compiled view (as MCP, DNS and HTTP do).
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
)

var (
	sections []section // by rank
	steps    []step    // by phase, then at
)

// register adds a section to the table. It panics on a duplicate key:
// two files claiming one key is a programming error found at start-up.
func register(s section) {
	if slices.ContainsFunc(sections, func(o section) bool { return o.key == s.key }) {
		panic("rules: section " + s.key + " registered twice")
	}
	i, _ := slices.BinarySearchFunc(sections, s.rank, func(o section, r int) int { return o.rank - r })
	sections = slices.Insert(sections, i, s)
	for _, st := range s.steps {
		j, _ := slices.BinarySearchFunc(steps, st, func(o, n step) int {
			if o.phase != n.phase {
				return int(o.phase) - int(n.phase)
			}
			return o.at - n.at
		})
		steps = slices.Insert(steps, j, st)
	}
}

// sectionFor returns the section registered for key.
func sectionFor(key string) (*section, bool) {
	for i := range sections {
		if sections[i].key == key {
			return &sections[i], true
		}
	}
	return nil, false
}

// sectionKeys lists the keys for an error, the last joined by last
// ("a, b or c"); last "" joins every key with ", ".
func sectionKeys(last string) string {
	keys := make([]string, len(sections))
	for i, s := range sections {
		keys[i] = s.key
	}
	if last == "" || len(keys) < 2 {
		return strings.Join(keys, ", ")
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " " + last + " " + keys[len(keys)-1]
}

// runSteps runs the compile steps of one phase in order.
func (c *compiler) runSteps(ph phase) error {
	for _, st := range steps {
		if st.phase != ph {
			continue
		}
		if err := st.run(c); err != nil {
			return err
		}
	}
	return nil
}
