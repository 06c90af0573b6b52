package rules

import "strconv"

// Action is what a rule says about a destination or a request.
//
// The zero value is Undecided, so a Decision nobody filled in can never
// pass: every Action but Allow is refused unless report mode lets a Deny
// through (see Decision.Allowed).
type Action uint8

const (
	// Undecided is the zero value: no rule was asked or none answered.
	// It is never allowed and is logged as "deny".
	Undecided Action = iota
	// Allow lets the traffic pass.
	Allow
	// Deny refuses the traffic, unless the decision is in report mode.
	Deny
	// Approve holds the traffic until a person approves it (an approve
	// rule: see approve.go); the Decision's Hold says how. Whoever cannot
	// hold refuses it like a Deny (report mode does not let it through).
	Approve
)

// String returns "undecided", "allow", "deny" or "approve"; any other
// value is "Action(N)".
func (a Action) String() string {
	switch a {
	case Undecided:
		return "undecided"
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Approve:
		return "approve"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Decision is the answer to one question; Rule and Source say which rule
// fired, so a security team can always answer "why was this blocked".
type Decision struct {
	Action Action
	// Report is set when the deciding rule (or the policy) is in report
	// mode: a Deny is logged but the traffic passes. It has no effect on
	// any other Action.
	Report bool
	// Rule is the id of the rule that fired: the rule's `id:` if given,
	// else "<file>:<line>"; list entries "<listfile>:<line>" (or
	// "<id-prefix>:<line>"); built-ins "default", "ports",
	// "builtin:non-public:<class>", "builtin:invalid", "builtin:self"
	// (RuleSelf), "builtin:no-addresses" (RuleNoAddresses), and for HTTP
	// rules "http:default", "builtin:trace" and "builtin:method-override".
	Rule string
	// Source is where that rule is written, "<file>:<line>"; for the
	// default and built-ins, the policy file.
	Source string
	// Reason is a short text for humans.
	Reason string
	// Hold is set when Action is Approve: how long to wait, who may
	// decide. It is the rule's, shared: do not modify it.
	Hold *Hold
}

// Allowed reports whether the traffic may pass: an Allow, or a Deny in
// report mode. Undecided (the zero Decision), Approve and any unknown
// Action are not allowed.
func (d Decision) Allowed() bool {
	return d.Action == Allow || d.Action == Deny && d.Report
}

// Outcome is the value audit events carry: "allow" for an Allow, "report"
// for a Deny let through by report mode, "approve" for an Approve, and
// "deny" for a Deny and for everything else (Undecided, unknown values),
// so nothing that was not allowed is ever logged as allowed.
func (d Decision) Outcome() string {
	switch d.Action {
	case Allow:
		return "allow"
	case Deny:
		if d.Report {
			return "report"
		}
	case Approve:
		return "approve"
	}
	return "deny"
}
