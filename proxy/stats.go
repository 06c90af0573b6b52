package proxy

import "net"

// Stats is what the proxy reports about itself for metrics: read through
// a function, so the request path keeps no counters of its own for it.
type Stats struct {
	OpenTunnels int // CONNECT tunnels open now
}

// Stats returns the proxy's numbers as they stand.
func (s *Server) Stats() Stats {
	s.tunnels.mu.Lock()
	n := len(s.tunnels.all)
	s.tunnels.mu.Unlock()
	return Stats{OpenTunnels: n}
}

// AddOwnAddr makes a of agentg's own listeners (the admin API's) a
// destination the proxy always refuses, as builtin:self, whatever CIDR
// the policy opens: an agent must never reach agentg's control plane
// through agentg. Call it before Serve, for every such listener; the
// proxy's own listeners are added by Serve.
func (s *Server) AddOwnAddr(a net.Addr) { s.addSelf(a) }
