package proxy

import (
	"net"
	"net/netip"
)

// Stats is what the proxy reports about itself for metrics: read through
// a function, so the request path keeps no counters of its own for it.
type Stats struct {
	OpenTunnels int // CONNECT tunnels open now
}

// Stats returns the proxy's numbers as they stand.
func (s *Server) Stats() Stats {
	return Stats{OpenTunnels: s.tunnels.count()}
}

// AddOwnAddr makes a of agentg's own listeners (the admin API's, the DNS
// filter's UDP and TCP sockets, any later one) a destination the proxy
// always refuses, as builtin:self, whatever CIDR the policy opens: an
// agent must never reach agentg through agentg. A listener bound to an
// unspecified address stands for every local address on its port (see
// self.go). Call it before Serve, for every such listener; the proxy's own
// listeners are added by Serve.
func (s *Server) AddOwnAddr(a net.Addr) { s.dial.addSelf(a) }

// IsOwnAddr reports whether a connection to ap would reach one of
// agentg's own listeners: for agentg's own clients that dial without the
// proxy (the OpenTelemetry export), which must not send to agentg itself.
func (s *Server) IsOwnAddr(ap netip.AddrPort) bool { return s.dial.isSelf(ap) }
