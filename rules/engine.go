package rules

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/agentg/agentg/addr"
)

// source is one rule or one list as written in the policy: everything an
// entry of the name table or a CIDR rule needs to know beyond its name.
type source struct {
	list   bool
	file   string // policy file (rules) or list path as written (lists)
	ruleID string // rules: the id; lists: the id prefix, or the list path
	where  string // rules: "<file>:<line>"
	label  string // "rule <id>" or "list <path>", for reasons
	agents []string
	ports  []portRange
	report bool
}

func (s *source) applies(agent string, port uint16) bool {
	if s.agents != nil && !slices.Contains(s.agents, agent) {
		return false
	}
	return portsContain(s.ports, port)
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
}

// Engine is a compiled policy. It is immutable after Load or Parse and safe
// for concurrent use; deciding does no I/O and, when nothing matches, no
// allocation.
type Engine struct {
	file        string
	files       []string
	defaultDeny bool
	report      bool
	ports       []portRange
	portsWhere  string
	names       nameTable
	sources     []source
	cidrs       []cidrRule
	agents      []agentSpec
	agentByName map[string]*agentSpec
	resolve     map[string][]netip.Addr
	stats       Stats
	dflt        Decision

	http         map[string][]httpEntry // http rules by pattern name
	icpt         map[string][]icEntry   // intercept and passthrough entries by pattern name
	interceptAll bool
	httpDflt     Decision // no http rule matched
	traceDeny    Decision // builtin:trace
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

func compile(pol *policy, dir string) (*Engine, error) {
	e := &Engine{
		file:        pol.file,
		defaultDeny: pol.defaultDeny,
		report:      pol.report,
		ports:       pol.ports,
		portsWhere:  fmt.Sprintf("%s:%d", pol.file, pol.portsLine),
		agents:      pol.agents,
		agentByName: map[string]*agentSpec{},
		resolve:     pol.resolve,
	}
	e.dflt = Decision{Action: Allow, Rule: "default", Source: pol.file, Reason: "no rule matched; default allow"}
	if pol.defaultDeny {
		e.dflt = Decision{Action: Deny, Report: pol.report, Rule: "default", Source: pol.file, Reason: "no rule matched; default deny"}
	}
	for i := range e.agents {
		e.agentByName[e.agents[i].name] = &e.agents[i]
	}
	ids := map[string]string{}
	ruleSource := func(line int, o ruleOpts) (int, error) {
		where := fmt.Sprintf("%s:%d", pol.file, line)
		id := o.id
		if id == "" {
			id = where
		} else if prev, dup := ids[id]; dup {
			return 0, fmt.Errorf("load policy %s: duplicate rule id %q (also at %s)", where, id, prev)
		}
		ids[id] = where
		e.sources = append(e.sources, source{
			file: pol.file, ruleID: id, where: where, label: "rule " + id,
			agents: o.agents, ports: o.ports, report: pol.report && o.mode != "enforce" || o.mode == "report",
		})
		return len(e.sources) - 1, nil
	}

	var b nameBuilder
	for _, r := range pol.hosts {
		src, err := ruleSource(r.line, r.opts)
		if err != nil {
			return nil, err
		}
		for _, p := range r.patterns {
			flags := p.kind
			if r.deny {
				flags |= flagDeny
				if r.opts.important {
					flags |= flagImportant
				}
			}
			if err := b.add([]byte(p.name), flags, r.line, src); err != nil {
				return nil, fmt.Errorf("load policy %s:%d: %w", pol.file, r.line, err)
			}
			e.stats.HostRules++
		}
	}
	listSrc := make([]int, len(pol.lists))
	e.stats.Lists = make([]ListStats, len(pol.lists))
	for i, l := range pol.lists {
		path := l.path
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		id := l.opts.id
		if id == "" {
			id = l.path
		}
		e.sources = append(e.sources, source{
			list: true, file: l.path, ruleID: id, label: "list " + l.path,
			agents: l.opts.agents, ports: l.opts.ports,
			report: pol.report && l.opts.mode != "enforce" || l.opts.mode == "report",
		})
		listSrc[i] = len(e.sources) - 1
		e.stats.Lists[i] = ListStats{Path: l.path, Format: l.format}
		if err := loadList(&b, path, l, listSrc[i], &e.stats.Lists[i]); err != nil {
			return nil, err
		}
		e.files = append(e.files, path)
	}
	dup := make([]int, len(e.sources))
	e.names = b.finish(dup)
	for i := range pol.lists {
		e.stats.Lists[i].Duplicates = dup[listSrc[i]]
		e.stats.Lists[i].Entries -= dup[listSrc[i]]
	}
	e.stats.TableMB = float64(e.names.bytesMemory()) / (1 << 20)

	for _, r := range pol.ips {
		src, err := ruleSource(r.line, r.opts)
		if err != nil {
			return nil, err
		}
		for _, p := range r.prefixes {
			e.cidrs = append(e.cidrs, cidrRule{prefix: p, deny: r.deny, important: r.opts.important, src: src})
		}
	}
	// Longest prefix first: the first applicable match is the most specific.
	slices.SortStableFunc(e.cidrs, func(a, b cidrRule) int { return b.prefix.Bits() - a.prefix.Bits() })
	e.stats.CIDRRules = len(e.cidrs)
	if err := e.compileHTTP(pol, ruleSource); err != nil {
		return nil, err
	}
	return e, nil
}

// Host decides a destination: the port restriction first, then an IP
// literal as an IP (never against host rules), else the host rules and
// lists by precedence. h must come from addr (canonical name).
func (e *Engine) Host(agent string, h addr.Host) Decision {
	if e.ports != nil && !portsContain(e.ports, h.Port) {
		return e.portDeny(h.Port)
	}
	if h.IsIP() {
		v := e.ipVerdict(agent, h.IP, h.Port)
		switch {
		case v.rule != nil && (v.rule.deny || v.open):
			return e.cidrDecision(v.rule, h.IP)
		case v.class != "":
			return e.nonPublic(h.IP, v.class)
		}
		return e.dflt
	}
	name := h.Name
	if name == "" {
		return Decision{Action: Deny, Rule: "builtin:invalid", Reason: "empty host"}
	}
	// One right-to-left pass: at each label boundary the running hash is
	// the hash of the suffix that starts there. Later (longer) suffixes
	// are more specific; at the full host an exact rule outranks a tree
	// rule of the same name.
	var best, imp uint32
	bestRank, impRank := -1, -1
	hs := uint64(fnvOffset)
	for i := len(name) - 1; i >= 0; i-- {
		hs = hashStep(hs, name[i])
		if i > 0 && name[i-1] != '.' {
			continue
		}
		for c := e.names.find(hs, name[i:]); c != 0; {
			cur, en := c, &e.names.entries[c-1]
			c = en.next
			rank, ok := suffixRank(name, i, en.flags&kindMask)
			if !ok || !e.sources[en.src].applies(agent, h.Port) {
				continue
			}
			deny := en.flags&flagDeny != 0
			if rank > bestRank || rank == bestRank && deny && e.names.entries[best-1].flags&flagDeny == 0 {
				best, bestRank = cur, rank
			}
			if deny && en.flags&flagImportant != 0 && rank > impRank {
				imp, impRank = cur, rank
			}
		}
	}
	if best == 0 {
		return e.dflt
	}
	if e.names.entries[best-1].flags&flagDeny == 0 && imp != 0 {
		best = imp // an important deny cannot be overridden by any allow
	}
	return e.nameDecision(best, name)
}

// IP checks one resolved address of an allowed name. It objects when a
// CIDR deny wins or the address is non-public and no CIDR allow opens its
// range; otherwise it returns Allow with Rule "" ("no objection": the host
// decision governs) or the id of the allow rule that matched.
func (e *Engine) IP(agent string, ip netip.Addr, port uint16) Decision {
	if e.ports != nil && !portsContain(e.ports, port) {
		return e.portDeny(port)
	}
	v := e.ipVerdict(agent, ip, port)
	switch {
	case v.rule != nil && (v.rule.deny || v.open):
		return e.cidrDecision(v.rule, ip)
	case v.class != "":
		return e.nonPublic(ip, v.class)
	}
	return Decision{Action: Allow}
}

func (e *Engine) portDeny(port uint16) Decision {
	return Decision{Action: Deny, Report: e.report, Rule: "ports", Source: e.portsWhere,
		Reason: fmt.Sprintf("port %d is not in the policy's ports", port)}
}

func (e *Engine) nonPublic(ip netip.Addr, class addr.Class) Decision {
	return Decision{Action: Deny, Report: e.report, Rule: "builtin:non-public:" + string(class), Source: e.file,
		Reason: fmt.Sprintf("non-public address %s (%s)", ip, class)}
}

func (e *Engine) cidrDecision(r *cidrRule, ip netip.Addr) Decision {
	s := &e.sources[r.src]
	d := Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
	if r.deny {
		d.Action, d.Report = Deny, s.report
		d.Reason = fmt.Sprintf("address %s denied by %s (%s)", ip, s.label, r.prefix)
	}
	// An allow needs no words: the rule id says it, and every resolved
	// address of every request is checked, so this stays allocation-free.
	return d
}

func (e *Engine) nameDecision(c uint32, name string) Decision {
	en := &e.names.entries[c-1]
	s := &e.sources[en.src]
	d := Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
	verb := "allowed"
	if en.flags&flagDeny != 0 {
		d.Action, d.Report, verb = Deny, s.report, "denied"
	}
	if !s.list {
		d.Reason = "host " + name + " " + verb + " by " + s.label
		return d
	}
	// A list hit builds Source and Reason as one string and slices it,
	// and shares Source as the id when the list has no id-prefix: one
	// allocation per hit, with the line number formatted on the stack.
	var buf [12]byte
	line := strconv.AppendUint(buf[:0], uint64(en.line), 10)
	all := s.file + ":" + string(line) + "host " + name + " " + verb + " by " + s.label
	k := len(s.file) + 1 + len(line)
	d.Source, d.Reason = all[:k], all[k:]
	d.Rule = d.Source
	if s.ruleID != s.file {
		d.Rule = s.ruleID + ":" + string(line)
	}
	return d
}

// Identify names the agent behind a connection. A Basic user is that
// agent, and must present the password when the policy holds one for it.
// Without a user, the agent whose cidrs most specifically contain src is
// chosen; "" when none does (the caller names it by the address).
func (e *Engine) Identify(user, password string, src netip.Addr) (string, error) {
	if user != "" {
		if !validName(user) {
			return "", fmt.Errorf("invalid agent name %q", user)
		}
		if a := e.agentByName[user]; a != nil && a.hasPass {
			// Hash first so the comparison does not leak the length.
			got, want := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(a.password))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return "", fmt.Errorf("bad credentials for agent %s", user)
			}
		}
		return user, nil
	}
	best, bestBits := "", -1
	for _, a := range e.agents {
		for _, p := range a.cidrs {
			if (p.Contains(src) || p.Contains(src.Unmap())) && p.Bits() > bestBits {
				best, bestBits = a.name, p.Bits()
			}
		}
	}
	return best, nil
}

// Resolve looks a name up in the policy's static resolver table. The
// slice is the engine's own (it is asked on every request): callers must
// not modify it.
func (e *Engine) Resolve(name string) ([]netip.Addr, bool) {
	ips, ok := e.resolve[name]
	if !ok {
		if c, err := addr.CanonicalName(name); err == nil && c != name {
			ips, ok = e.resolve[c]
		}
	}
	return ips, ok
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
