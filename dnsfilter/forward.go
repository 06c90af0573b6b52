package dnsfilter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/rules"
)

// Forwarding to upstreams: plain DNS over UDP with TCP when the answer is
// truncated, or DNS-over-TLS; several upstreams tried in turn, each
// attempt bounded by dns.timeout, starting with the last one that
// answered. An upstream that fails (no answer in time, a refusal, an
// answer to another question) is skipped for the rest of the query; when
// all fail the query fails, and the client gets SERVFAIL.

type upstream struct {
	spec rules.DNSUpstream
	addr string
	udp  *dns.Client // nil for TLS
	tcp  *dns.Client // TCP fallback, or the TLS client
}

type forwarder struct {
	ups     []*upstream
	timeout time.Duration
	err     error        // why there are no upstreams
	next    atomic.Int32 // the upstream to try first
}

func newForwarder(specs []rules.DNSUpstream, timeout time.Duration, roots *x509.CertPool, dialer *net.Dialer, err error) *forwarder {
	f := &forwarder{timeout: timeout, err: err}
	for _, sp := range specs {
		u := &upstream{spec: sp, addr: sp.Addr.String()}
		if sp.TLS {
			u.tcp = &dns.Client{Net: "tcp-tls", Timeout: timeout, Dialer: dialer, TLSConfig: &tls.Config{
				ServerName: sp.ServerName, RootCAs: roots, MinVersion: tls.VersionTLS12,
			}}
		} else {
			u.udp = &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ourUDPSize, Dialer: dialer}
			u.tcp = &dns.Client{Net: "tcp", Timeout: timeout, Dialer: dialer}
		}
		f.ups = append(f.ups, u)
	}
	if len(f.ups) == 0 && f.err == nil {
		f.err = errors.New("no upstream configured")
	}
	return f
}

// exchange asks the upstreams for (name, qtype) and returns the first
// acceptable answer, sanitized into an entry. self reports agentg's own
// listening addresses, which are never forwarded to.
func (f *forwarder) exchange(ctx context.Context, name string, qtype uint16, c rules.DNSCache, now func() time.Time, self func(netip.AddrPort) bool) (*entry, error) {
	if f.err != nil {
		return nil, f.err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(ourUDPSize, false)

	var errs []string
	first := int(f.next.Load())
	for i := range f.ups {
		k := (first + i) % len(f.ups)
		u := f.ups[k]
		if self(u.spec.Addr) {
			errs = append(errs, u.spec.Spec+": is agentg's own listener")
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err.Error())
			break
		}
		resp, err := u.exchange(ctx, m, f.timeout)
		if err == nil {
			var ent *entry
			if ent, err = sanitize(resp, name, qtype, u.spec.Spec, c, now()); err == nil {
				f.next.Store(int32(k))
				return ent, nil
			}
		}
		errs = append(errs, u.spec.Spec+": "+err.Error())
	}
	return nil, fmt.Errorf("no upstream answered: %s", strings.Join(errs, "; "))
}

// exchange is one attempt at one upstream, with TCP after a truncated
// UDP answer.
func (u *upstream) exchange(ctx context.Context, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m.Id = dns.Id() // a fresh id per attempt: a late answer to an earlier one is not taken
	if u.udp != nil {
		resp, _, err := u.udp.ExchangeContext(ctx, m, u.addr)
		if err != nil {
			return nil, err
		}
		if !resp.Truncated {
			return resp, nil
		}
	}
	resp, _, err := u.tcp.ExchangeContext(ctx, m, u.addr)
	if err != nil {
		return nil, err
	}
	return resp, nil
}
