package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dnsfilter"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// The DNS filter's part of `agentg serve`: the --dns flag and starting
// the filter's listeners.

const defaultDNSAddr = "127.0.0.1:5353"

// dnsFlags is --dns: repeatable; "off" disables the filter.
type dnsFlags struct{ addrs []string }

func (d *dnsFlags) register(fs *flag.FlagSet) {
	fs.Func("dns", "address the DNS filter answers on, UDP and TCP (repeatable, e.g. 127.0.0.1:53 and [::1]:53; default "+defaultDNSAddr+"; \"off\" disables it)", func(v string) error {
		d.addrs = append(d.addrs, v)
		return nil
	})
}

// list is the addresses to listen on; nil when the filter is off.
func (d *dnsFlags) list() ([]string, error) {
	if len(d.addrs) == 0 {
		return []string{defaultDNSAddr}, nil
	}
	for _, a := range d.addrs {
		if a == "off" {
			if len(d.addrs) > 1 {
				return nil, errors.New("--dns off cannot be combined with addresses")
			}
			return nil, nil
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("--dns %q: want HOST:PORT or off: %w", a, err)
		}
	}
	return d.addrs, nil
}

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
