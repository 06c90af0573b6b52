package testenv

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNSUpstreamOptions configure a DNS server on loopback that plays an
// upstream resolver: it answers from a small zone, and can misbehave on
// purpose.
type DNSUpstreamOptions struct {
	// Records are the zone, one RR per string in presentation format
	// ("a.example. 60 IN A 93.184.216.34"). A name with a CNAME is
	// followed within the zone, as a recursive resolver would.
	Records []string
	// Hook, when set, sees every query first; returning true means it
	// wrote the answer itself.
	Hook func(w dns.ResponseWriter, r *dns.Msg) bool
	// TruncateUDP answers every UDP query with no records and TC set, so
	// only TCP gets the answer.
	TruncateUDP bool
	// Delay holds every answer this long.
	Delay time.Duration
	// TLS, when set, also serves DNS-over-TLS on TLSAddr.
	TLS *tls.Config
	// NegativeTTL is the SOA minimum of negative answers; 0 means 30.
	NegativeTTL uint32
	// PacketConn and Listener, when both set, are the sockets to serve
	// (opened elsewhere, say in a network namespace) instead of a free
	// port on 127.0.0.1.
	PacketConn net.PacketConn
	Listener   net.Listener
}

// DNSUpstream is a running DNS server (on 127.0.0.1 unless given sockets).
type DNSUpstream struct {
	Addr    string // UDP and TCP, one port
	TLSAddr string // DNS-over-TLS, when configured

	opts    DNSUpstreamOptions
	zone    map[string][]dns.RR // by lower-case fqdn
	mu      sync.Mutex
	counts  map[string]int // "name/TYPE/net" -> queries
	total   atomic.Int64
	servers []*dns.Server
}

// StartDNSUpstream starts the server; Close stops it.
func StartDNSUpstream(o DNSUpstreamOptions) (*DNSUpstream, error) {
	u := &DNSUpstream{opts: o, zone: map[string][]dns.RR{}, counts: map[string]int{}}
	for _, s := range o.Records {
		rr, err := dns.NewRR(s)
		if err != nil || rr == nil {
			return nil, fmt.Errorf("dns upstream record %q: %v", s, err)
		}
		k := strings.ToLower(rr.Header().Name)
		u.zone[k] = append(u.zone[k], rr)
	}
	pc, ln := o.PacketConn, o.Listener
	if pc == nil || ln == nil {
		var err error
		if pc, ln, err = ListenDNS("127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	u.Addr = pc.LocalAddr().String()
	u.start(&dns.Server{PacketConn: pc}, "udp")
	u.start(&dns.Server{Listener: ln}, "tcp")
	if o.TLS != nil {
		tl, err := tls.Listen("tcp", "127.0.0.1:0", o.TLS)
		if err != nil {
			u.Close()
			return nil, err
		}
		u.TLSAddr = tl.Addr().String()
		u.start(&dns.Server{Listener: tl, Net: "tcp-tls"}, "tls")
	}
	return u, nil
}

// ListenDNS opens a UDP socket and a TCP listener on one address; with
// port 0, both get the same free port.
func ListenDNS(addr string) (net.PacketConn, net.Listener, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if !strings.HasSuffix(addr, ":0") {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("listen dns %s: no port free for both UDP and TCP", addr)
}

func (u *DNSUpstream) start(s *dns.Server, netw string) {
	s.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { u.serve(w, r, netw) })
	started := make(chan struct{})
	s.NotifyStartedFunc = func() { close(started) }
	u.servers = append(u.servers, s)
	go s.ActivateAndServe()
	<-started
}

// Close stops the server.
func (u *DNSUpstream) Close() {
	for _, s := range u.servers {
		s.Shutdown()
	}
}

// Queries is how many queries for name (any case, with or without the
// trailing dot) and type arrived, over every transport.
func (u *DNSUpstream) Queries(name string, qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, netw := range []string{"udp", "tcp", "tls"} {
		n += u.counts[u.key(name, qtype, netw)]
	}
	return n
}

// QueriesOver is Queries for one transport: "udp", "tcp" or "tls".
func (u *DNSUpstream) QueriesOver(name string, qtype uint16, netw string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[u.key(name, qtype, netw)]
}

// Total is every query received.
func (u *DNSUpstream) Total() int { return int(u.total.Load()) }

func (u *DNSUpstream) key(name string, qtype uint16, netw string) string {
	return strings.ToLower(dns.Fqdn(name)) + "/" + dns.Type(qtype).String() + "/" + netw
}

func (u *DNSUpstream) serve(w dns.ResponseWriter, r *dns.Msg, netw string) {
	u.total.Add(1)
	if len(r.Question) == 1 {
		q := r.Question[0]
		u.mu.Lock()
		u.counts[u.key(q.Name, q.Qtype, netw)]++
		u.mu.Unlock()
	}
	if u.opts.Delay > 0 {
		time.Sleep(u.opts.Delay)
	}
	if u.opts.Hook != nil && u.opts.Hook(w, r) {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	if u.opts.TruncateUDP && netw == "udp" {
		m.Truncated = true
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	found := false
	for range 8 {
		rrs := u.zone[name]
		if len(rrs) > 0 {
			found = true
		}
		next := ""
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			} else if c, ok := rr.(*dns.CNAME); ok && q.Qtype != dns.TypeCNAME {
				m.Answer = append(m.Answer, dns.Copy(rr))
				next = strings.ToLower(c.Target)
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		neg := u.opts.NegativeTTL
		if neg == 0 {
			neg = 30
		}
		labels := dns.SplitDomainName(q.Name)
		apex := "."
		if len(labels) >= 2 {
			apex = dns.Fqdn(strings.Join(labels[len(labels)-2:], "."))
		}
		m.Ns = append(m.Ns, &dns.SOA{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns: "ns." + apex, Mbox: "hostmaster." + apex, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: neg})
	}
	w.WriteMsg(m)
}

// DNSBlackhole is a DNS address on loopback that reads queries and never
// answers: an upstream that is down without saying so.
type DNSBlackhole struct {
	Addr string
	pc   net.PacketConn
	ln   net.Listener
}

// StartDNSBlackhole starts one; Close stops it.
func StartDNSBlackhole() (*DNSBlackhole, error) {
	pc, ln, err := ListenDNS("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &DNSBlackhole{Addr: pc.LocalAddr().String(), pc: pc, ln: ln}
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // hold it open, read and say nothing, until closed
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return b, nil
}

// Close stops the blackhole.
func (b *DNSBlackhole) Close() {
	b.pc.Close()
	b.ln.Close()
}
