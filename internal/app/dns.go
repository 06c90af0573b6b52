package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dnsfilter"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// The DNS filter's part of a running agentg: its listeners, all or none,
// one UDP socket per CPU (SO_REUSEPORT) and one TCP listener per address.

// dnsServer is the running filter.
type dnsServer struct {
	srv   *dnsfilter.Server
	addrs []string   // where it listens, as bound
	own   []net.Addr // every socket's address, UDP and TCP: agentg's own (ownAddrs)
	done  chan error
}

// startDNS opens the filter's listeners (all or none) and serves them.
// With no addresses it returns nil: the filter is off.
func startDNS(addrs []string, live *rules.Live, logger *audit.Logger, bindings *state.Bindings, roots *x509.CertPool, mark int) (*dnsServer, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	srv, err := dnsfilter.New(dnsfilter.Config{Policy: live, Log: logger, Bindings: bindings, Roots: roots, Dialer: proxy.MarkedDialer(mark)})
	if err != nil {
		return nil, err
	}
	type pair struct {
		pcs []net.PacketConn // one per CPU, SO_REUSEPORT
		ln  net.Listener
	}
	var socks []pair
	for _, a := range addrs {
		pc, ln, err := dnsfilter.Listen(a)
		var more []net.PacketConn
		if err == nil {
			if more, err = dnsfilter.ListenMore(pc, runtime.GOMAXPROCS(0)-1); err != nil {
				pc.Close()
				ln.Close()
			}
		}
		if err != nil {
			for _, p := range socks {
				for _, pc := range p.pcs {
					pc.Close()
				}
				p.ln.Close()
			}
			if errors.Is(err, syscall.EADDRINUSE) {
				err = fmt.Errorf("%w: something else answers there (another DNS server, or another agentg); give the DNS filter another address with --dns HOST:PORT, or turn it off with --dns off", err)
			} else if errors.Is(err, syscall.EACCES) {
				err = fmt.Errorf("%w: a port below 1024 needs root or CAP_NET_BIND_SERVICE; use a higher port (--dns 127.0.0.1:1053) and point the resolver there, or --dns off", err)
			}
			return nil, err
		}
		socks = append(socks, pair{append([]net.PacketConn{pc}, more...), ln})
	}
	n := 0
	for _, p := range socks {
		n += len(p.pcs) + 1
	}
	d := &dnsServer{srv: srv, done: make(chan error, n)}
	for _, p := range socks {
		d.addrs = append(d.addrs, p.pcs[0].LocalAddr().String())
		d.own = append(d.own, p.pcs[0].LocalAddr(), p.ln.Addr())
		for _, pc := range p.pcs {
			go func() { d.done <- srv.ServePacket(pc) }()
		}
		go func() { d.done <- srv.ServeListener(p.ln) }()
	}
	return d, nil
}

// resolver is what the proxy resolves through: the filter's cache and
// upstreams when it runs, else the system's resolver.
func (d *dnsServer) resolver() proxy.Resolver {
	if d == nil {
		return nil
	}
	return d.srv.Resolver()
}

// ownAddrs are the filter's listening addresses, which the proxy must
// refuse as destinations: a tunnel to them would reach the filter from
// agentg's own address, and the filter would take agentg for the agent.
func (d *dnsServer) ownAddrs() []net.Addr {
	if d == nil {
		return nil
	}
	return d.own
}

// memory is the filter's budget and use, for the admin API's gauges.
func (d *dnsServer) memory() admin.DNSMemory {
	m := d.srv.Metrics()
	return admin.DNSMemory{Limit: m.Memory, CacheBytes: m.CacheBytes, CacheMaxBytes: m.CacheMaxBytes, CacheEntries: m.CacheEntries,
		BindingsBytes: m.BindingsBytes, BindingsMaxBytes: m.BindingsMaxBytes, BindingsRows: m.BindingsRows}
}

func (d *dnsServer) listening() []string {
	if d == nil {
		return nil
	}
	return d.addrs
}

func (d *dnsServer) shutdown(ctx context.Context) error {
	if d == nil {
		return nil
	}
	return d.srv.Shutdown(ctx)
}
