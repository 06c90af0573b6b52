package dnsfilter

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// recorder is a dns.ResponseWriter that keeps the reply.
type recorder struct {
	tcp     bool
	msg     *dns.Msg
	n       int
	discard bool // Write keeps nothing: benchmarks
}

func (r *recorder) LocalAddr() net.Addr {
	if r.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (r *recorder) RemoteAddr() net.Addr {
	if r.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; r.n++; return nil }
func (r *recorder) Write(b []byte) (int, error) {
	if r.discard {
		return len(b), nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	r.msg = m
	r.n++
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// FuzzServeDNS feeds packets through the query path as the server does
// (unpack, then the handler): every message that unpacks gets exactly one
// reply, for its own id, that packs again; nothing panics. The policy
// allows one name (answered by a loopback upstream) and denies the rest,
// so the path through the guards, the decision, the cache and the answer
// checks is all exercised.
func FuzzServeDNS(f *testing.F) {
	up, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{Records: zone})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(up.Close)
	dir := f.TempDir()
	pol := &livePolicy{}
	pol.e.Store(compile(f, dir, "default: deny\nhosts:\n  - allow: [allowed.example, alias.example, rebind.example]\n"+
		"dns:\n  timeout: 200ms\n  upstreams: [\""+up.Addr+"\"]\n  limits:\n    query_rate: off\n"))
	srv, err := New(Config{Policy: pol, Log: audit.New(io.Discard), Bindings: state.NewBindings(state.BindingsOptions{})})
	if err != nil {
		f.Fatal(err)
	}
	seed := func(name string, qtype uint16, edns bool) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		if edns {
			m.SetEdns0(1232, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	seed("allowed.example.", dns.TypeA, true)
	seed("AlIaS.example.", dns.TypeAAAA, false)
	seed("rebind.example.", dns.TypeA, true)
	seed("denied.example.", dns.TypeTXT, true)
	seed("x.", dns.TypeANY, false)
	seed(".", dns.TypeNS, true)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, false) // compression loop
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, true)                        // a promised question missing
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		var m dns.Msg
		if m.Unpack(b) != nil || m.Response {
			return // the server drops these before the handler
		}
		w := &recorder{tcp: tcp}
		srv.ServeDNS(w, &m)
		if w.n != 1 || w.msg == nil {
			t.Fatalf("%d replies", w.n)
		}
		if w.msg.Id != m.Id || !w.msg.Response {
			t.Fatalf("reply id %d for query %d", w.msg.Id, m.Id)
		}
		if _, err := w.msg.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, w.msg)
		}
		if !tcp {
			w.msg.Compress = true
			if l := w.msg.Len(); l > ourUDPSize {
				t.Fatalf("UDP reply of %d bytes", l)
			}
		}
	})
}

// FuzzCheckAnswer feeds upstream answers (any record types, any data)
// through sanitize and checkAnswer: nothing panics, and no record the
// checks keep carries an address the agent may not reach or is of a type
// the checks cannot classify (rrcheck.go).
func FuzzCheckAnswer(f *testing.F) {
	eng := compile(f, f.TempDir(), "default: allow\nhosts:\n  - deny: .evil.example\n")
	for _, s := range []string{
		`q.example. 60 IN HTTPS 1 . ipv4hint=127.0.0.1,93.184.216.34 ipv6hint=::1`,
		`q.example. 60 IN A 10.0.0.1`,
		`q.example. 60 IN CNAME x.evil.example.`,
		`q.example. 60 IN APL 1:10.0.0.0/8 2:2001:db8::/32`,
		`q.example. 60 IN URI 10 1 "http://[::1]/"`,
		`q.example. 60 IN TYPE65400 \# 4 7f000001`,
	} {
		rr := mustRR(s)
		m := new(dns.Msg)
		m.SetQuestion("q.example.", rr.Header().Rrtype)
		m.Response = true
		m.Answer = []dns.RR{rr}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m dns.Msg
		if m.Unpack(b) != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		ent, err := sanitize(&m, canonical(q.Name), q.Qtype, "fuzz", rules.DNSCache{MaxTTL: time.Hour}, time.Unix(0, 0))
		if err != nil {
			return
		}
		chk := checkAnswer(eng, "a", ent)
		if chk.deny.Action != rules.Undecided {
			return
		}
		for i, rr := range ent.answer {
			if chk.drop != nil && chk.drop[i] {
				continue
			}
			if rc := checkRecord(eng, "a", rr); rc.drop {
				t.Fatalf("kept %v, which its check drops: %s", rr, rc.d.Reason)
			}
			var ip netip.Addr
			switch r := rr.(type) {
			case *dns.A:
				ip, _ = netip.AddrFromSlice(r.A)
			case *dns.AAAA:
				ip, _ = netip.AddrFromSlice(r.AAAA)
			default:
				continue
			}
			if !eng.DNS().AnswerIP("a", ip.Unmap()).Allowed() {
				t.Fatalf("kept %v", rr)
			}
		}
	})
}
