package rules

// Action is what a rule says about a destination.
type Action uint8

const (
	Allow Action = iota
	Deny
)

func (a Action) String() string {
	if a == Allow {
		return "allow"
	}
	return "deny"
}

// Decision is the answer to one question; Rule and Source say which rule
// fired, so a security team can always answer "why was this blocked".
type Decision struct {
	Action Action
	// Report is set when the deciding rule (or the policy) is in report
	// mode: the deny is logged but the traffic passes.
	Report bool
	// Rule is the id of the rule that fired: the rule's `id:` if given,
	// else "<file>:<line>"; list entries "<listfile>:<line>" (or
	// "<id-prefix>:<line>"); built-ins "default", "ports",
	// "builtin:non-public:<class>", and for HTTP rules "http:default" and
	// "builtin:trace".
	Rule string
	// Source is where that rule is written, "<file>:<line>"; for the
	// default, the policy file.
	Source string
	// Reason is a short text for humans.
	Reason string
}

// Allowed reports whether the traffic may pass: an allow, or a deny in
// report mode.
func (d Decision) Allowed() bool { return d.Action == Allow || d.Report }

// Outcome is "allow", "deny", or "report" (a deny let through by report
// mode), the value audit events carry.
func (d Decision) Outcome() string {
	switch {
	case d.Action == Allow:
		return "allow"
	case d.Report:
		return "report"
	}
	return "deny"
}
