package rules

import "strings"

// The catalog: the rules and lists of a compiled policy as people (and
// the admin API) list them, and the id under which a decision is counted.

// RuleInfo is one rule or list of a policy.
type RuleInfo struct {
	// ID is the rule's id (its `id:`, else "<file>:<line>"); for a list,
	// its id-prefix, else its path: the id its entries' decisions are
	// counted under (see Engine.RuleGroup).
	ID string `json:"id"`
	// Source is where it is written, "<file>:<line>"; for a list, where
	// the policy names it; for the default, the policy file.
	Source string `json:"source"`
	// Label is how reasons name it: "rule no-corp", "list deny.txt",
	// "redact secrets", "default".
	Label  string   `json:"label"`
	List   bool     `json:"list,omitempty"`
	Agents []string `json:"agents,omitempty"` // the agents it applies to; none: every agent
	Report bool     `json:"report,omitempty"` // report mode: its denials are logged, not enforced
}

// Rules lists the policy's default, then every rule and list in the order
// the policy compiles them.
func (e *Engine) Rules() []RuleInfo {
	out := make([]RuleInfo, 0, 1+len(e.sources))
	out = append(out, RuleInfo{ID: e.dflt.Rule, Source: e.dflt.Source, Label: "default", Report: e.dflt.Report})
	for i := range e.sources {
		s := &e.sources[i]
		out = append(out, RuleInfo{
			ID: s.ruleID, Source: s.where, Label: s.label, List: s.list,
			Agents: append([]string(nil), s.agents...), Report: s.report,
		})
	}
	return out
}

// RuleGroup is the id a decision's rule is counted under: a list entry's
// rule ("<list id>:<line>") is counted under its list's id, so that a
// list of a million lines is one series, not a million; any other rule
// id is itself. To group many ids against one engine, take RuleGroups
// once.
func (e *Engine) RuleGroup(rule string) string { return e.RuleGroups()(rule) }

// RuleGroups returns RuleGroup for this engine with the list ids looked
// up once, so that each call is a map lookup whatever the policy's size.
func (e *Engine) RuleGroups() func(rule string) string {
	lists := map[string]struct{}{}
	for i := range e.sources {
		if s := &e.sources[i]; s.list {
			lists[s.ruleID] = struct{}{}
		}
	}
	return func(rule string) string {
		i := strings.LastIndexByte(rule, ':')
		if i <= 0 || i == len(rule)-1 || strings.Trim(rule[i+1:], "0123456789") != "" {
			return rule
		}
		if _, ok := lists[rule[:i]]; ok {
			return rule[:i]
		}
		return rule
	}
}
