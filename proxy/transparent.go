package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect"
	"github.com/agentg/agentg/rules"
)

// The transparent door. The network redirects an agent's connections here
// (nftables REDIRECT or TPROXY; see package netsetup), the client never
// says where it is going, and the connection's original destination is
// what the kernel recorded. The first bytes are classified without being
// consumed, and each kind goes into the functions the explicit door uses:
//
//   - TLS: the ClientHello's SNI is the host for policy, and it must agree
//     with the original destination (the address is one agentg resolves
//     the name to, or one the DNS filter bound to it for this agent:
//     builtin:dst-mismatch otherwise). Then it is a tunnel like an allowed
//     CONNECT (runTunnel): intercepted per policy, or gated (whole
//     ClientHello, no ECH unless allowed) and relayed to the original
//     address. A hello without SNI is decided by IP rules.
//   - HTTP/1: each request is decided on the exchange path, its Host the
//     host for policy under the same agreement check.
//   - anything else: relayed only to an address a CIDR rule opens or one
//     the DNS filter bound to an allowed name for this agent; otherwise
//     closed (builtin:transparent-raw).
//
// Only the original address is ever dialed, and only once it passed the
// IP rules. The agent is whoever the policy says the source address is,
// since nothing here can carry credentials.

// Rule ids of the transparent door's own refusals.
const (
	ruleDstMismatch   = "builtin:dst-mismatch"
	ruleRaw           = "builtin:transparent-raw"
	ruleOriginalDst   = "builtin:original-dst"
	ruleLoop          = "builtin:loop"
	ruleTransparentH1 = "builtin:transparent-http"
)

// DoorTransparent is the door events of the transparent listener name.
const DoorTransparent = "transparent"

// transparentDoor is the transparent listener: its listeners, and what
// the loop check (CheckLoop) learns from the connections it refuses.
type transparentDoor struct {
	s       *Server
	mu      sync.Mutex
	lns     []net.Listener // closed by Shutdown
	closing atomic.Bool
	loops   chan netip.AddrPort            // original destinations of loops seen, for CheckLoop
	probe   atomic.Pointer[netip.AddrPort] // CheckLoop's probe while it runs
}

func newTransparentDoor(s *Server) *transparentDoor {
	return &transparentDoor{s: s, loops: make(chan netip.AddrPort, 1)}
}

// ListenTransparent opens a TCP listener for ServeTransparent. On Linux it
// asks for IP_TRANSPARENT, which TPROXY needs; without the privilege for
// it the listener still serves REDIRECTed connections.
func ListenTransparent(ctx context.Context, address string) (net.Listener, error) {
	lc := net.ListenConfig{Control: transparentControl}
	ln, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("transparent listener %s: %w", address, err)
	}
	return ln, nil
}

// ServeTransparent accepts redirected connections on ln until Shutdown.
// Its address becomes one the proxy refuses to dial, like Serve's.
func (s *Server) ServeTransparent(ln net.Listener) error { return s.transparent.serve(ln) }

func (d *transparentDoor) serve(ln net.Listener) error {
	d.s.dial.addSelf(ln.Addr())
	d.mu.Lock()
	if d.closing.Load() {
		d.mu.Unlock()
		ln.Close()
		return nil
	}
	d.lns = append(d.lns, ln)
	d.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if d.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("transparent listener: %w", err)
		}
		backoff = 0
		go d.serveConn(c)
	}
}

// close stops the listeners; a Serve after it returns at once.
func (d *transparentDoor) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closing.Store(true)
	for _, ln := range d.lns {
		ln.Close()
	}
	d.lns = nil
}

// serveConn handles one redirected connection and writes its event when
// it ends.
func (d *transparentDoor) serveConn(c net.Conn) {
	s := d.s
	ctx := context.Background()
	f := s.events.newFlow("connect", c.RemoteAddr().String(), "")
	f.door, f.scheme = DoorTransparent, "tunnel"
	defer s.events.emit(f)
	defer c.Close()

	src := remoteIP(f.client)
	dst, err := originalDst(c)
	if err != nil {
		f.deny(rules.Decision{Action: rules.Deny, Rule: ruleOriginalDst, Reason: err.Error()})
		return
	}
	f.origDst = dst
	f.host = ipHost(dst)
	if d.looped(f) {
		return
	}

	// Who: nothing here carries credentials; the source address names
	// the agent (rules.Engine.AgentAt, as on every door).
	eng := s.cfg.Policy.Engine()
	agent, err := eng.AgentAt(rules.Claim{Src: src})
	if err != nil {
		f.deny(rules.Decision{Action: rules.Deny, Rule: "request", Reason: err.Error()})
		return
	}
	f.agent = agent

	// A protocol in which the server speaks first sends nothing to sniff:
	// where raw TCP may go, the wait for the client is short.
	raw := d.rawGrant(eng, agent, dst)
	wait := s.cfg.FirstBytesTimeout
	if raw.ok {
		wait = min(wait, s.cfg.ServerFirstWait)
	}
	br := bufio.NewReaderSize(c, 4096)
	proto, err := sniffWithin(c, br, wait)
	if err != nil && raw.ok && isTimeout(err) {
		if br.Buffered() == 0 {
			proto, err = dissect.Unknown, nil // the server speaks first
		} else {
			proto, err = s.sniff(c, br) // it has begun: give it the full time
		}
	}
	if err != nil {
		f.deny(gateDeny(err))
		return
	}
	// An outbound connection is in the set once its dial returned,
	// which may be just after it was accepted here; by the time it has
	// sent its first bytes it is.
	if d.looped(f) {
		return
	}
	conn := &bufferedConn{Conn: c, br: br}
	switch proto {
	case dissect.TLS:
		d.serveTLS(ctx, f, conn, br)
	case dissect.HTTP1:
		d.serveHTTP(ctx, f, conn)
	default:
		if !raw.ok {
			f.deny(raw.d)
			return
		}
		f.host, f.decision, f.ips = raw.host, raw.d, raw.ips
		d.serveTunnel(ctx, f, conn)
	}
}

// looped refuses a connection that agentg itself opened (one of its
// outbound connections, or the loop check's probe) and that the network
// redirected back to it, which would otherwise be dialed again, and again.
func (d *transparentDoor) looped(f *flow) bool {
	ap, err := netip.ParseAddrPort(f.client)
	if err != nil {
		return false
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	probe := d.probe.Load()
	if !d.s.dial.out.has(ap) && (probe == nil || *probe != f.origDst) {
		return false
	}
	f.deny(rules.Decision{Action: rules.Deny, Rule: ruleLoop,
		Reason: "a connection agentg itself opened was redirected back to it: its outbound traffic must not be redirected (mark it with --mark and let the mark pass)"})
	select {
	case d.loops <- f.origDst:
	default:
	}
	return true
}

// serveTLS reads the ClientHello (and gives it back: the tunnel's
// gate or the interceptor reads it again), takes its SNI for the host, and
// runs the tunnel once the name agrees with the original destination.
func (d *transparentDoor) serveTLS(ctx context.Context, f *flow, conn net.Conn, br *bufio.Reader) {
	conn.SetReadDeadline(time.Now().Add(d.s.cfg.FirstBytesTimeout))
	h, b, err := dissect.ReadClientHello(br, maxHello)
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		f.deny(gateDeny(err))
		return
	}
	host := f.host
	if h.ServerName != "" {
		sni, err := addr.Canonical(h.ServerName)
		if err != nil {
			f.deny(gateDeny(fmt.Errorf("TLS SNI %q: %w", h.ServerName, err)))
			return
		}
		sni.Port = f.origDst.Port()
		host = sni
	}
	if ref := d.s.pipe.authorizeTransparent(ctx, f, host); ref != nil {
		return
	}
	d.serveTunnel(ctx, f, &rewound{Conn: conn, b: b})
}

// serveTunnel runs an authorised transparent connection as a tunnel:
// intercepted when the policy says so, else gated and relayed. A refusal
// is in f's event; the client, never told it spoke to a proxy, is told
// nothing.
func (d *transparentDoor) serveTunnel(ctx context.Context, f *flow, conn net.Conn) {
	t, ref := d.s.openTunnel(ctx, f, true)
	if ref != nil {
		return
	}
	d.s.runTunnel(ctx, t, conn)
}

// serveHTTP serves a plaintext HTTP/1 connection request by request on
// the exchange path; the connection's own event says so.
func (d *transparentDoor) serveHTTP(ctx context.Context, f *flow, conn net.Conn) {
	s := d.s
	f.decision = rules.Decision{Action: rules.Allow, Rule: ruleTransparentH1,
		Reason: "HTTP/1: each request is decided on its own"}
	f.scheme = "http"
	t := &tunnel{f: f, transparent: true}
	if dec, ok := s.pipe.admitTunnel(t); !ok {
		f.deny(dec)
		return
	}
	defer s.tunnels.remove(t)
	if !t.attach(conn) {
		return
	}
	s.serveConn(context.WithoutCancel(ctx), conn, "http/1.1", s.innerAt(t, "http", doorTransparent))
}

// authorizeTransparent decides host h for f, whose original destination
// is fixed: the host rules, then the agreement of a name with the
// original address, then the IP rules for that address, the only one
// that will be dialed. It fills f; a refusal means the connection or
// request must not go on.
func (p *pipeline) authorizeTransparent(ctx context.Context, f *flow, h addr.Host) *refusal {
	f.host = h
	if ref := p.hostLeak(f); ref != nil {
		return ref
	}
	eng := p.policy.Engine()
	f.decision = eng.Host(f.agent, h)
	if !f.decision.Allowed() {
		return denied(f)
	}
	ip := f.origDst.Addr()
	if reason := p.agrees(ctx, eng, f.agent, h, ip); reason != "" {
		f.decision = rules.Decision{Action: rules.Deny, Rule: ruleDstMismatch, Reason: reason}
		return denied(f)
	}
	return p.admitAddrs(eng, f, []netip.Addr{ip})
}

// agrees says why h does not agree with the address ip a connection was
// going to, or "" when it does: an IP literal must be ip itself; a name
// must have been bound to ip for agent by the DNS filter, or resolve (the
// policy's resolve table, else DNS) to it.
func (p *pipeline) agrees(ctx context.Context, eng *rules.Engine, agent string, h addr.Host, ip netip.Addr) string {
	if h.IsIP() {
		if h.IP.Unmap() == ip {
			return ""
		}
		return fmt.Sprintf("%s names %s, but the connection was going to %s", h.Name, h.IP, ip)
	}
	if p.bound(agent, h.Name, ip) {
		return ""
	}
	ips, err := p.resolve(ctx, eng, h)
	if err != nil {
		return fmt.Sprintf("the connection was going to %s, which %s cannot be checked against: %v", ip, h.Name, err)
	}
	if containsAddr(ips, ip) {
		return ""
	}
	return fmt.Sprintf("%s resolves to %v, not to %s where the connection was going, and the DNS filter handed it out to this agent for no such name", h.Name, ips, ip)
}

// bound reports whether the DNS filter handed ip out for name to agent.
func (p *pipeline) bound(agent, name string, ip netip.Addr) bool {
	if p.bindings == nil {
		return false
	}
	for _, n := range p.bindings.NamesFor(agent, ip) {
		if c, err := addr.CanonicalName(n); err == nil && c == name {
			return true
		}
	}
	return false
}

// grant is the answer to "may raw TCP go to this address?": the host the
// event names (the address, or the name a binding gives it), the decision
// and the address to dial; or, when not ok, the refusal.
type grant struct {
	ok   bool
	host addr.Host
	d    rules.Decision
	ips  []netip.Addr
}

// rawGrant decides a connection whose bytes say nothing of where it goes:
// it may go to an address a CIDR rule opens for the agent, or to one the
// DNS filter bound, for this agent, to a name the policy allows. Nothing
// else is open, whatever the policy's default.
func (d *transparentDoor) rawGrant(eng *rules.Engine, agent string, dst netip.AddrPort) grant {
	isSelf, bindings := d.s.dial.isSelf, d.s.pipe.bindings
	ip := dst.Addr()
	if d, ok := eng.CIDRAllows(agent, ip, dst.Port()); ok {
		lit := ipHost(dst)
		if d2, ips := eng.Addresses(d, rules.Dest{Agent: agent, Host: lit, IPs: []netip.Addr{ip}, Self: isSelf}); len(ips) > 0 {
			return grant{ok: true, host: lit, d: d2, ips: ips}
		}
	}
	if bindings != nil {
		for _, n := range bindings.NamesFor(agent, ip) {
			h, err := addr.Canonical(n)
			if err != nil || h.IsIP() {
				continue
			}
			h.Port = dst.Port()
			d := eng.Host(agent, h)
			if !d.Allowed() {
				continue
			}
			if d2, ips := eng.Addresses(d, rules.Dest{Agent: agent, Host: h, IPs: []netip.Addr{ip}, Self: isSelf}); len(ips) > 0 {
				return grant{ok: true, host: h, d: d2, ips: ips}
			}
		}
	}
	return grant{d: rules.Decision{Action: rules.Deny, Rule: ruleRaw, Reason: dst.String() +
		": the first bytes are neither TLS nor HTTP/1, and no CIDR rule opens the address, nor did the DNS filter resolve a name the policy allows to it for this agent"}}
}

// ipHost is the original destination as an IP literal host.
func ipHost(dst netip.AddrPort) addr.Host {
	ip := dst.Addr().Unmap()
	return addr.Host{Name: ip.String(), IP: ip, Port: dst.Port()}
}

// CheckLoop makes sure agentg's own outbound connections are not
// redirected back to it: it dials a listener of its own on loopback the
// way it dials upstreams (marked) and fails unless the connection arrives
// there rather than at a transparent listener. Run it once the transparent
// listener serves; transparent mode must not start when it fails.
func (s *Server) CheckLoop(ctx context.Context) error { return s.transparent.checkLoop(ctx) }

func (d *transparentDoor) checkLoop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("loop check: %w", err)
	}
	defer probe.Close()
	pa, err := netip.ParseAddrPort(probe.Addr().String())
	if err != nil {
		return fmt.Errorf("loop check: %w", err)
	}
	d.probe.Store(&pa)
	defer d.probe.Store(nil)
	arrived := make(chan netip.AddrPort, 1)
	go func() {
		c, err := probe.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			arrived <- ap
		}
	}()
	c, err := d.s.dial.dialOut(ctx, probe.Addr().String())
	if err != nil {
		return fmt.Errorf("loop check: dialing as agentg dials upstreams: %w", err)
	}
	defer c.Close()
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	for {
		select {
		case ap := <-arrived:
			if ap.Port() == local.Port() {
				return nil
			}
		case dst := <-d.loops:
			if dst == pa {
				return errors.New("loop check: agentg's own outbound connection was redirected to its transparent listener; give agentg's traffic a mark (--mark) the redirect rules let pass, or run it as a uid they do not redirect")
			}
		case <-ctx.Done():
			return errors.New("loop check: agentg's own outbound connection to " + probe.Addr().String() + " reached neither the probe nor the transparent listener within " + strconv.Itoa(5) + "s")
		}
	}
}
