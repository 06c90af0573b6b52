package dnsfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Resolver gives the explicit proxy its lookups through the filter's
// cache and upstreams, so a name the proxy resolves and the same name an
// agent resolves through the filter share one answer. It answers names
// only: the proxy decides names and checks every address itself, so
// nothing here asks the policy (beyond which upstreams it names).
//
// It implements proxy.Resolver (LookupNetIP).
type Resolver struct{ s *Server }

// Resolver returns the proxy's view of the filter.
func (s *Server) Resolver() *Resolver { return &Resolver{s: s} }

// LookupNetIP looks host up: network "ip" asks for A and AAAA, "ip4" A,
// "ip6" AAAA. "localhost" and names under it are the loopback addresses
// (RFC 6761), never asked upstream. A name that does not exist is a
// *net.DNSError with IsNotFound set.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	name := canonical(host)
	if name == "" {
		return nil, &net.DNSError{Err: "empty name", Name: host}
	}
	var types []uint16
	switch network {
	case "ip":
		types = []uint16{dns.TypeA, dns.TypeAAAA}
	case "ip4":
		types = []uint16{dns.TypeA}
	case "ip6":
		types = []uint16{dns.TypeAAAA}
	default:
		return nil, fmt.Errorf("dnsfilter: lookup %s: unknown network %q", host, network)
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		var out []netip.Addr
		for _, t := range types {
			if t == dns.TypeA {
				out = append(out, netip.MustParseAddr("127.0.0.1"))
			} else {
				out = append(out, netip.IPv6Loopback())
			}
		}
		return out, nil
	}

	type result struct {
		ent *entry
		err error
	}
	ps := r.s.state(r.s.cfg.Policy.Engine())
	ch := make(chan result, len(types))
	for _, t := range types {
		go func() {
			ent, _, err := r.s.lookup(ps, name, t)
			ch <- result{ent, err}
		}()
	}
	var out []netip.Addr
	var firstErr error
	notFound := 0
	for range types {
		var res result
		select {
		case res = <-ch:
		case <-ctx.Done():
			return nil, &net.DNSError{Err: ctx.Err().Error(), Name: host, IsTimeout: true}
		}
		switch {
		case res.err != nil:
			if firstErr == nil {
				firstErr = res.err
			}
		case res.ent.rcode == dns.RcodeNameError:
			notFound++
		default:
			out = appendAddrs(out, res.ent)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case firstErr != nil:
		return nil, &net.DNSError{Err: firstErr.Error(), Name: host, IsTemporary: true}
	case notFound > 0:
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
}

func appendAddrs(out []netip.Addr, ent *entry) []netip.Addr {
	for _, rr := range ent.answer {
		switch r := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(r.A); ok {
				out = append(out, ip.Unmap())
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(r.AAAA); ok {
				out = append(out, ip)
			}
		}
	}
	return out
}
