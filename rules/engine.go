package rules

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// The engine: one compiled policy, and the compile step that runs the
// sections' compile steps (sections.go) in turn.

// source is one rule or one list as written in the policy: everything an
// entry of the name table, a CIDR rule or an http rule needs to know
// beyond its pattern.
type source struct {
	list   bool
	file   string // policy file (rules) or list path as written (lists)
	ruleID string // rules: the id; lists: the id prefix, or the list path
	where  string // "<file>:<line>" of the rule, or of the list's entry in the policy
	label  string // "rule <id>" or "list <path>", for reasons
	agents []string
	ports  []portRange
	report bool
}

func (s *source) appliesTo(agent string) bool {
	return s.agents == nil || slices.Contains(s.agents, agent)
}

func (s *source) applies(agent string, port uint16) bool {
	return s.appliesTo(agent) && portsContain(s.ports, port)
}

// Stats counts what an engine was compiled from.
type Stats struct {
	HostRules int // host patterns from the policy
	CIDRRules int // CIDRs from the policy
	Lists     []ListStats
	TableMB   float64 // size of the packed name table

	HTTPRules        int  // http rule patterns ("METHODS HOST[PATH]" values)
	InterceptAll     bool // "intercept: all"
	InterceptRules   int  // intercept host patterns
	PassthroughRules int  // passthrough host patterns

	MCPServers    int // mcp servers entries
	ToolRules     int // mcp tool rule patterns
	PromptRules   int // mcp prompt rule patterns
	ResourceRules int // mcp resource rule (server, uri) pairs
	MCPRedactions int // mcp redact entries
	MCPRateLimits int // mcp rate_limits entries
}

// Engine is a compiled policy. It is immutable after Load or Parse and safe
// for concurrent use; deciding does no I/O and, when nothing matches, no
// allocation.
type Engine struct {
	file        string
	files       []string
	defaultDeny bool
	report      bool
	dflt        Decision // no host or CIDR rule matched
	sources     []source // every rule and list, indexed by the entries below
	stats       Stats

	ports   portPolicy   // ports.go
	names   hostNames    // hosts.go and lists.go
	cidrs   cidrTable    // ips.go
	agents  agentTable   // agents.go
	resolve resolveTable // resolve.go
	tunnels tunnelRules  // tunnel.go
	http    HTTPRules    // http.go
	mcp     MCPRules     // mcp*.go
	dns     DNSRules     // dns.go
	quotas  []quotaEntry // quotas.go

	// views holds, by key, the compiled form of a section that has no
	// field above (see sections.go).
	views slots
}

// Load reads the policy file at path and every list it references (paths
// relative to the policy's directory) and compiles them. Errors name the
// file and line.
func Load(path string) (*Engine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	pol, err := parsePolicy(path, data)
	if err != nil {
		return nil, err
	}
	e, err := compile(pol, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	e.files = append([]string{path}, e.files...)
	return e, nil
}

// Parse compiles a policy held in memory (the embedded default policy);
// name is used in errors and rule ids, list paths are relative to the
// working directory.
func Parse(name string, data []byte) (*Engine, error) {
	pol, err := parsePolicy(name, data)
	if err != nil {
		return nil, err
	}
	return compile(pol, ".")
}

// compiler carries what the sections' compile steps share: the engine
// being built and the rule ids seen so far.
type compiler struct {
	e   *Engine
	pol *policy
	dir string            // list paths are relative to it
	ids map[string]string // rule id -> where it was defined

	names   *nameBuilder // the name table, until it is packed
	listSrc []int        // each list's source, for its duplicate count
}

// ruleSource records one rule's source and returns its index. Rule ids
// are unique across hosts, ips, http and mcp.
func (c *compiler) ruleSource(line int, o ruleOpts) (int, error) {
	where := fmt.Sprintf("%s:%d", c.pol.file, line)
	id := o.id
	if id == "" {
		id = where
	} else if prev, dup := c.ids[id]; dup {
		return 0, fmt.Errorf("load policy %s: duplicate rule id %q (also at %s)", where, id, prev)
	}
	c.ids[id] = where
	c.e.sources = append(c.e.sources, source{
		file: c.pol.file, ruleID: id, where: where, label: "rule " + id,
		agents: o.agents, ports: o.ports, report: c.pol.report && o.mode != "enforce" || o.mode == "report",
	})
	return len(c.e.sources) - 1, nil
}

func compile(pol *policy, dir string) (*Engine, error) {
	e := &Engine{
		file:        pol.file,
		defaultDeny: pol.defaultDeny,
		report:      pol.report,
	}
	e.dflt = Decision{Action: Allow, Rule: "default", Source: pol.file, Reason: "no rule matched; default allow"}
	if pol.defaultDeny {
		e.dflt = Decision{Action: Deny, Report: pol.report, Rule: "default", Source: pol.file, Reason: "no rule matched; default deny"}
	}
	e.http.e, e.mcp.e, e.cidrs.e, e.names.e = e, e, e, e // the sections' views decide with the engine's sources
	c := &compiler{e: e, pol: pol, dir: dir, ids: map[string]string{}, names: &nameBuilder{}}

	// Every section's steps in the table's order (sections.go): first
	// those that add names, then the table is packed, then the rest.
	if err := c.runSteps(phaseNames); err != nil {
		return nil, err
	}
	dup := make([]int, len(e.sources))
	e.names.nameTable = c.names.finish(dup)
	for i, src := range c.listSrc {
		e.stats.Lists[i].Duplicates = dup[src]
		e.stats.Lists[i].Entries -= dup[src]
	}
	e.stats.TableMB = float64(e.names.bytesMemory()) / (1 << 20)
	if err := c.runSteps(phaseRules); err != nil {
		return nil, err
	}
	return e, nil
}

// Files lists every file the engine was loaded from: the policy (when
// loaded from disk) and each list, as opened.
func (e *Engine) Files() []string { return slices.Clone(e.files) }

// Stats returns what the engine was compiled from.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Lists = slices.Clone(s.Lists)
	return s
}
