package bench

import "io"

// Transparent mode beside explicit mode, across network namespaces
// (netns_linux.go builds them): the clients in an agent namespace, agentg
// in a router namespace, the origins in an upstream namespace.
//
//   - Direct: from an agent namespace whose traffic the router routes to
//     the origins as they are, with no redirect.
//   - Agentg (explicit): from that namespace, through agentg's explicit
//     listener on the router (HTTPS_PROXY style, CONNECT tunnels).
//   - Transparent: from a second agent namespace, like the first, whose
//     traffic the rules `agentg netsetup --iface` installed on the router
//     redirect to agentg's transparent listener; the clients know of no
//     proxy.
//
// One agentg process serves both listeners, so the two proxied modes
// differ only by their door.

// Transparent is the mode of a run whose clients know of no proxy and
// whose connections the network redirects to agentg.
const Transparent Mode = "transparent"

// TransparentTarget is the floor for transparent over explicit of each
// scenario's judged figure: transparent mode within 10% of explicit mode.
const TransparentTarget = 0.90

// NetnsConfig says how to build a NetnsEnv.
type NetnsConfig struct {
	// Agentg is the agentg binary; empty builds one from this module.
	Agentg string
	// Keep leaves the run's directory in place (the namespaces and rules
	// go either way).
	Keep bool
	// Stderr receives agentg's stderr (nil: kept only for errors).
	Stderr io.Writer
}

// TransparentSet is a scenario run direct, explicit and transparent: the
// medians and ratios of direct (Set), and transparent over explicit,
// judged against TransparentTarget (its Runs are each round's own).
type TransparentSet struct {
	Set
	VsExplicit Ratio
}

// RunTransparentSet runs sc in rounds of direct, explicit, transparent
// (n rounds, at least 1), and compares the medians.
func (e *NetnsEnv) RunTransparentSet(sc Scenario, o Options, n int, progress func(round int, r Result)) TransparentSet {
	set, runs := runSet(e, sc, o, n, progress)
	ts := TransparentSet{Set: set}
	var ex, tr Result
	for i, r := range set.Proxied {
		switch r.Mode {
		case Agentg:
			ex = set.Proxied[i]
		case Transparent:
			tr = set.Proxied[i]
		}
	}
	ts.VsExplicit = Compare(sc, ex, tr)
	ts.VsExplicit.Target = TransparentTarget
	ts.VsExplicit.Met = ts.VsExplicit.Judged() >= TransparentTarget
	for i := range min(len(runs[Agentg]), len(runs[Transparent])) {
		ts.VsExplicit.Runs = append(ts.VsExplicit.Runs, Compare(sc, runs[Agentg][i], runs[Transparent][i]).Judged())
	}
	return ts
}

// Modes are explicit and transparent, for every scenario.
func (e *NetnsEnv) Modes(Scenario) []Mode { return []Mode{Agentg, Transparent} }

// Base is the origin URL (scheme://name:port) sc's clients use.
func (e *NetnsEnv) Base(sc Scenario) string {
	switch {
	case sc.Intercept:
		return e.InterceptBase
	case sc.TLS:
		return e.HTTPSBase
	default:
		return e.HTTPBase
	}
}

func (e *NetnsEnv) proxyPid(m Mode) int {
	if m != Direct && e.Agentg != nil {
		return e.Agentg.Pid()
	}
	return 0
}

var _ runner = (*NetnsEnv)(nil)
