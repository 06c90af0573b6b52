package rules

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The approve verdict: a tool rule (mcp.tools) or an http rule whose value
// is under `approve:` holds what it covers until a person decides. The
// rule may say how long to wait (`timeout:`, default DefaultHoldTimeout;
// past it the call is denied) and who may decide (`via:`, default
// [console]: the admin API and what uses it; `elicitation`: the MCP
// client's own user, asked in band).
//
// Precedence is the one of allow and deny: the most specific pattern wins;
// on a tie deny beats approve and approve beats allow; an important deny
// beats both. An approve pattern matches like a deny (a tool name without
// regard to case, a path loosely), so no spelling steps around it.

// DefaultHoldTimeout is how long an approve rule waits when it names no
// timeout.
const DefaultHoldTimeout = 120 * time.Second

// Hold bounds on a rule's timeout.
const (
	minHoldTimeout = time.Second
	maxHoldTimeout = 24 * time.Hour
)

// Hold is how an approve rule holds what it covers. A Decision carries one
// exactly when its Action is Approve; it is shared and must not be
// modified.
type Hold struct {
	// Timeout is how long the call waits for a decision; then it is
	// denied.
	Timeout time.Duration
	// Console: an approver (admin API, CLI, console, webhook receiver)
	// may decide. Elicitation: the MCP client may be asked in band, when
	// it declared the elicitation capability.
	Console, Elicitation bool
}

// Via lists who may decide, as the policy spells them.
func (h *Hold) Via() []string {
	var out []string
	if h.Console {
		out = append(out, "console")
	}
	if h.Elicitation {
		out = append(out, "elicitation")
	}
	return out
}

// verb is what a rule says: allow, deny or approve.
type verb uint8

const (
	verbAllow verb = iota
	verbDeny
	verbApprove
)

// rank orders verbs on a tie of specificity: deny, then approve, then
// allow.
func (v verb) rank() int {
	switch v {
	case verbDeny:
		return 2
	case verbApprove:
		return 1
	}
	return 0
}

// holdKeys parses an approve rule's timeout and via; ok is false for any
// other key.
type holdKeys struct {
	timeout, via *yaml.Node
}

func (h *holdKeys) take(k, v *yaml.Node) bool {
	switch k.Value {
	case "timeout":
		h.timeout = v
	case "via":
		h.via = v
	default:
		return false
	}
	return true
}

// hold builds the Hold of an approve rule, or refuses timeout and via on
// another.
func (p *parser) hold(it *yaml.Node, vb verb, o ruleOpts, h holdKeys) (*Hold, error) {
	if vb != verbApprove {
		for _, n := range []*yaml.Node{h.timeout, h.via} {
			if n != nil {
				return nil, p.errf(n, "timeout and via apply to approve rules only")
			}
		}
		return nil, nil
	}
	if o.mode == "report" {
		return nil, p.errf(keyNode(it, "mode"), "an approve rule holds what it covers: mode report does not apply to it")
	}
	out := &Hold{Timeout: DefaultHoldTimeout, Console: true}
	if h.timeout != nil {
		s, err := p.scalar(h.timeout)
		if err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < minHoldTimeout || d > maxHoldTimeout {
			return nil, p.errf(h.timeout, "bad timeout %q (want a duration from %s to %s, e.g. 120s or 10m)", s, minHoldTimeout, maxHoldTimeout)
		}
		out.Timeout = d
	}
	if h.via != nil {
		its, err := p.items(h.via)
		if err != nil {
			return nil, err
		}
		out.Console = false
		seen := map[string]bool{}
		for _, n := range its {
			if seen[n.Value] {
				return nil, p.errf(n, "via %q given twice", n.Value)
			}
			seen[n.Value] = true
			switch n.Value {
			case "console":
				out.Console = true
			case "elicitation":
				out.Elicitation = true
			default:
				return nil, p.errf(n, "unknown via %q (want console, elicitation)", n.Value)
			}
		}
	}
	return out, nil
}

// holdReason is the reason of an approve decision.
func holdReason(what, label, pat string, h *Hold) string {
	return fmt.Sprintf("%s held for approval by %s (%s; via %s, timeout %s)", what, label, pat, strings.Join(h.Via(), ", "), h.Timeout)
}
