package dnsfilter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// livePolicy is a Policy whose engine a test swaps, as a reload does.
type livePolicy struct{ e atomic.Pointer[rules.Engine] }

func (p *livePolicy) Engine() *rules.Engine { return p.e.Load() }

// syncBuffer collects the event log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) events() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["kind"] == "dns" {
			out = append(out, m)
		}
	}
	return out
}

// env is a filter on loopback (UDP and TCP on one port) with its log.
type env struct {
	t        *testing.T
	srv      *Server
	addr     string
	policy   *livePolicy
	log      *syncBuffer
	clock    *clock
	bindings *state.Bindings
	dir      string
	mark     atomic.Int64 // events logged before the last query
	asked    atomic.Value // the last query's question, a question
}

// question is what an event of the query names (host, qtype).
type question struct{ host, qtype string }

type envOptions struct {
	files   map[string]string // written beside the policy (lists)
	noClock bool              // real time (for timeouts measured by the upstream side)
	maxTCP  int               // Config.MaxTCPConns
}

func compile(t testing.TB, dir, policy string) *rules.Engine {
	t.Helper()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := rules.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func startFilter(t *testing.T, policy string, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	for name, body := range o.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, policy: &livePolicy{}, log: &syncBuffer{}, clock: newClock(), dir: dir}
	e.policy.e.Store(compile(t, dir, policy))
	now := e.clock.Now
	if o.noClock {
		now = nil
	}
	e.bindings = state.NewBindings(state.BindingsOptions{Floor: 10 * time.Second, Now: now})
	srv, err := New(Config{Policy: e.policy, Log: audit.New(e.log), Bindings: e.bindings, Now: now,
		ResolvConf: filepath.Join(dir, "no-resolv.conf"), MaxTCPConns: o.maxTCP})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	pc, ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = pc.LocalAddr().String()
	go srv.ServePacket(pc)
	go srv.ServeListener(ln)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	// Wait until both transports answer.
	for _, netw := range []string{"udp", "tcp"} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			c := &dns.Client{Net: netw, Timeout: 200 * time.Millisecond}
			m := new(dns.Msg)
			m.SetQuestion("ready.invalid.", dns.TypeA)
			m.Question[0].Qclass = dns.ClassCHAOS // refused at once: nothing goes upstream
			if _, _, err := c.Exchange(m, e.addr); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("filter on %s/%s not answering", e.addr, netw)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.log.events()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the readiness queries' events
	}
	e.log.mu.Lock()
	e.log.b.Reset()
	e.log.mu.Unlock()
	return e
}

// reload swaps the policy, as rules.Live does.
func (e *env) reload(policy string) { e.policy.e.Store(compile(e.t, e.dir, policy)) }

type qopt struct {
	netw   string // "udp" (default) or "tcp"
	noEDNS bool
	size   uint16 // EDNS buffer size; default 1232
	src    string // local address to send from
}

func (e *env) query(name string, qtype uint16, o qopt) *dns.Msg {
	e.t.Helper()
	m, err := e.tryQuery(name, qtype, o)
	if err != nil {
		e.t.Fatalf("query %s %s: %v", name, dns.Type(qtype), err)
	}
	return m
}

func (e *env) tryQuery(name string, qtype uint16, o qopt) (*dns.Msg, error) {
	if o.netw == "" {
		o.netw = "udp"
	}
	e.mark.Store(int64(len(e.log.events())))
	e.asked.Store(question{strings.ToLower(strings.TrimSuffix(name, ".")), dns.Type(qtype).String()})
	c := &dns.Client{Net: o.netw, Timeout: 10 * time.Second}
	if o.src != "" {
		ip := net.ParseIP(o.src)
		if o.netw == "udp" {
			c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: ip}}
		} else {
			c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if !o.noEDNS {
		size := o.size
		if size == 0 {
			size = 1232
		}
		m.SetEdns0(size, false)
	}
	r, _, err := c.Exchange(m, e.addr)
	return r, err
}

// lastEvent is the event of the last query: an event is written just
// after the reply, so it waits for it.
// lastEvent waits for the event of the last query: the newest logged
// since it was asked that names its question. A query's event is written
// after its answer, so the one before's may still come in behind it; an
// event that names something else (a refusal of a malformed question)
// is taken once nothing better has come for a second.
func (e *env) lastEvent() map[string]any {
	e.t.Helper()
	q, _ := e.asked.Load().(question)
	start := time.Now()
	for {
		evs := e.log.events()
		if newer := evs[min(int(e.mark.Load()), len(evs)):]; len(newer) > 0 {
			for i := len(newer) - 1; i >= 0; i-- {
				if newer[i]["host"] == q.host && newer[i]["qtype"] == q.qtype {
					return newer[i]
				}
			}
			if time.Since(start) > time.Second {
				return newer[len(newer)-1]
			}
		}
		if time.Since(start) > 5*time.Second {
			e.t.Fatal("no dns event logged for the last query")
		}
		time.Sleep(time.Millisecond)
	}
}

// edeOf returns the reply's Extended DNS Error, if any.
func edeOf(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

// addrs lists the A and AAAA values of a reply.
func addrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		}
	}
	return out
}

func startUpstream(t *testing.T, o testenv.DNSUpstreamOptions) *testenv.DNSUpstream {
	t.Helper()
	u, err := testenv.StartDNSUpstream(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

// zone is the records most tests resolve.
var zone = []string{
	"allowed.example. 60 IN A 93.184.216.34",
	"allowed.example. 60 IN AAAA 2606:2800:220:1:248:1893:25c8:1946",
	"allowed.example. 60 IN TXT \"hello\"",
	"denied.example. 60 IN A 93.184.216.35",
	"sub.denied.example. 60 IN A 93.184.216.35",
	"www.ok.example. 60 IN CNAME edge.evil.example.",
	"edge.evil.example. 60 IN A 93.184.216.36",
	"alias.example. 300 IN CNAME allowed.example.",
	"rebind.example. 60 IN A 127.0.0.1",
	"mixed.example. 60 IN A 10.1.2.3",
	"mixed.example. 60 IN A 93.184.216.37",
}

// policyWith is a policy forwarding to u, plus more YAML under dns: and
// at the top level.
func policyWith(u *testenv.DNSUpstream, dnsExtra, top string) string {
	p := "default: allow\nhosts:\n  - deny: denied.example\n    id: no-denied\n  - deny: .evil.example\n    id: no-evil\n" + top +
		"dns:\n  upstreams: [\"" + u.Addr + "\"]\n  timeout: 500ms\n" + dnsExtra
	return p
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
