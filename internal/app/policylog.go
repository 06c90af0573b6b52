package app

import (
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/rules"
)

// What serve says of the policy it loads: at start and on every reload,
// the warnings `agentg check` prints (a host with HTTP rules that is not
// intercepted is a bypass, and an operator who never runs check must
// still hear it), and on a reload what changed, so "policy reloaded" is
// not a line that says nothing.

// policyLog remembers the last policy's counts, for the next reload's
// account of what changed. Reloads come from several triggers (the file
// watch, SIGHUP, the admin API), hence the lock.
type policyLog struct {
	mu   sync.Mutex
	last rules.Stats
}

// loaded logs eng's warnings and returns what changed since the policy
// before it (nil at start).
func (p *policyLog) loaded(zl *zerolog.Logger, eng *rules.Engine, first bool) []string {
	for _, w := range eng.Warnings() {
		zl.Warn().Str("source", w.Source).Msg("policy warning: " + w.Text)
	}
	now := eng.Stats()
	p.mu.Lock()
	prev := p.last
	p.last = now
	p.mu.Unlock()
	if first {
		return nil
	}
	return statsChanges(prev, now)
}

// statsChanges names each count that differs between two policies, as
// "tool patterns 3→4"; nothing when only rules' contents changed.
func statsChanges(a, b rules.Stats) []string {
	var out []string
	diff := func(what string, x, y int) {
		if x != y {
			out = append(out, fmt.Sprintf("%s %d→%d", what, x, y))
		}
	}
	diff("host patterns", a.HostRules, b.HostRules)
	diff("CIDR rules", a.CIDRRules, b.CIDRRules)
	diff("lists", len(a.Lists), len(b.Lists))
	diff("list entries", listEntries(a), listEntries(b))
	diff("http rules", a.HTTPRules, b.HTTPRules)
	diff("intercept patterns", a.InterceptRules, b.InterceptRules)
	diff("passthrough patterns", a.PassthroughRules, b.PassthroughRules)
	if a.InterceptAll != b.InterceptAll {
		out = append(out, fmt.Sprintf("intercept all %v→%v", a.InterceptAll, b.InterceptAll))
	}
	diff("mcp servers", a.MCPServers, b.MCPServers)
	diff("tool patterns", a.ToolRules, b.ToolRules)
	diff("prompt patterns", a.PromptRules, b.PromptRules)
	diff("resource patterns", a.ResourceRules, b.ResourceRules)
	diff("mcp redactions", a.MCPRedactions, b.MCPRedactions)
	diff("mcp rate limits", a.MCPRateLimits, b.MCPRateLimits)
	return out
}

func listEntries(s rules.Stats) int {
	n := 0
	for _, l := range s.Lists {
		n += l.Entries
	}
	return n
}

// changeText is changes for the log line: "none in the counts" when the
// reload changed only what rules say, not how many there are.
func changeText(changes []string) string {
	if len(changes) == 0 {
		return "no counts changed (rules' contents may have)"
	}
	return strings.Join(changes, ", ")
}
