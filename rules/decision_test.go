package rules

import "testing"

// Every Action, with and without report mode, passes or not exactly as
// documented, and nothing that is refused is logged as allowed.
func TestActionsExhaustive(t *testing.T) {
	tests := []struct {
		a       Action
		report  bool
		allowed bool
		outcome string
		str     string
	}{
		{Undecided, false, false, "deny", "undecided"},
		{Undecided, true, false, "deny", "undecided"},
		{Allow, false, true, "allow", "allow"},
		{Allow, true, true, "allow", "allow"},
		{Deny, false, false, "deny", "deny"},
		{Deny, true, true, "report", "deny"},
		{Approve, false, false, "approve", "approve"},
		{Approve, true, false, "approve", "approve"},
		{Action(200), false, false, "deny", "Action(200)"},
		{Action(200), true, false, "deny", "Action(200)"},
	}
	for _, tt := range tests {
		d := Decision{Action: tt.a, Report: tt.report}
		if d.Allowed() != tt.allowed || d.Outcome() != tt.outcome || tt.a.String() != tt.str {
			t.Errorf("%v report=%v: Allowed %v Outcome %q String %q; want %v %q %q",
				tt.a, tt.report, d.Allowed(), d.Outcome(), tt.a.String(), tt.allowed, tt.outcome, tt.str)
		}
		if !d.Allowed() && (d.Outcome() == "allow" || d.Outcome() == "report") {
			t.Errorf("%v report=%v: refused but logged as %q", tt.a, tt.report, d.Outcome())
		}
	}
	for a := range Action(255) {
		d := Decision{Action: a}
		if d.Allowed() != (a == Allow) {
			t.Errorf("Action %d: Allowed %v", a, d.Allowed())
		}
	}
	var zero Decision
	if zero.Allowed() || zero.Outcome() != "deny" || zero.Action == Allow {
		t.Errorf("zero Decision: Allowed %v Outcome %q", zero.Allowed(), zero.Outcome())
	}
}
