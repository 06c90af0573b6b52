package app

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/gateway/child"
	"github.com/agentg/agentg/rules"
)

// The policy's command servers (mcp.servers entries with command:): a
// supervisor starts them once the explicit listener is up (their
// HTTPS_PROXY points at it), starts the ones a reload adds, and stops
// them all when agentg closes. The proxy proves their identities through
// stdioServers, which it gets before the supervisor exists.

// stdioServers is the proxy's view of the supervisor, bound once it
// starts: until then no server identity is accepted.
type stdioServers struct {
	sup atomic.Pointer[child.Supervisor]
}

func (s *stdioServers) Check(server, password string) bool {
	if p := s.sup.Load(); p != nil {
		return p.Check(server, password)
	}
	return false
}

// startStdio starts the supervisor and the policy's command servers.
func (a *App) startStdio() error {
	sup, err := child.NewSupervisor(child.SupervisorConfig{Log: a.log, Proxy: loopbackOf(a.ln.Addr()), Grace: a.cfg.ShutdownTimeout})
	if err != nil {
		return err
	}
	a.stdio.sup.Store(sup)
	a.live.OnReload(func(e *rules.Engine) { sup.Start(e) })
	sup.Start(a.live.Engine())
	a.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*a.cfg.ShutdownTimeout+1)
		defer cancel()
		sup.Stop(ctx)
	})
	return nil
}

// Stdio is the supervisor of the policy's command servers: the gateway
// door serves them to clients through it (Child, Current).
func (a *App) Stdio() *child.Supervisor { return a.stdio.sup.Load() }

// loopbackOf is the address a child on this host reaches the listener
// at: a wildcard listener's loopback.
func loopbackOf(ad net.Addr) string {
	tcp, ok := ad.(*net.TCPAddr)
	if !ok {
		return ad.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if tcp.IP != nil && tcp.IP.To4() == nil {
			ip = net.IPv6loopback
		}
	}
	return (&net.TCPAddr{IP: ip, Port: tcp.Port}).String()
}

// Guard is the MCP guard every door decides MCP with: the gateway door
// serves its children through Guard().NewSession.
func (a *App) Guard() *mcp.Guard { return a.guard }

// Policy is the policy in force, reloaded in place.
func (a *App) Policy() *rules.Live { return a.live }
