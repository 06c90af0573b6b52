package dnsfilter

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// Policy hands out the policy in force; *rules.Live implements it.
type Policy interface {
	Engine() *rules.Engine
}

// Config is what a Server needs. Policy and Log are required.
type Config struct {
	Policy Policy
	Log    *audit.Logger
	// Bindings receives the addresses handed out for allowed names; nil
	// keeps none.
	Bindings *state.Bindings
	// Roots verify DNS-over-TLS upstreams; nil means the system roots.
	Roots *x509.CertPool
	// Dialer opens the sockets to the upstreams; nil means a plain one.
	// In transparent mode it marks them (SO_MARK), so that the filter's
	// own queries are never redirected back to it.
	Dialer *net.Dialer
	// ResolvConf is where the system's resolvers are read from when the
	// policy names no upstreams; default /etc/resolv.conf.
	ResolvConf string
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// MaxTCPConns bounds the TCP connections ServeListener serves at
	// once; 0 means DefaultMaxTCPConns.
	MaxTCPConns int
}

// DefaultMaxTCPConns is how many TCP connections the filter serves at
// once. Each holds a goroutine and its buffers for up to its idle
// timeout, so without a bound an agent could open connections until the
// filter's TCP side (and its memory) is gone for everyone; past the bound
// a connection waits in the listen backlog until one ends.
const DefaultMaxTCPConns = 256

// Server is the DNS filter. Create it with New, give it sockets with
// ServePacket and ServeListener, stop it with Shutdown.
type Server struct {
	cfg     Config
	now     func() time.Time
	cache   *cache
	flight  singleflight.Group
	rates   *limit.Rates
	subs    *subdomains
	metrics Metrics
	events  sync.Pool // of *pooledEvent (metrics.go)

	cur     atomic.Pointer[policyState]
	stateMu sync.Mutex // serialises refresh

	mu      sync.Mutex
	servers []*dns.Server
	self    atomic.Pointer[[]netip.AddrPort]
	closed  bool
}

// policyState is what the server derives from one engine: its dns
// settings and the forwarder for its upstreams.
type policyState struct {
	eng *rules.Engine
	set rules.DNSSettings
	fwd *forwarder
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Policy == nil || cfg.Log == nil {
		return nil, errors.New("dnsfilter: Config.Policy and Config.Log are required")
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	s := &Server{cfg: cfg, now: cfg.Now, rates: limit.NewRates(limit.Options{Now: cfg.Now})}
	if s.now == nil {
		s.now = time.Now
	}
	s.subs = newSubdomains(s.now)
	eng := cfg.Policy.Engine()
	if eng == nil {
		return nil, errors.New("dnsfilter: no policy in force")
	}
	set := eng.DNS().DNSSettings
	s.cache = newCache(set.Cache, s.now)
	s.setBudget(set)
	s.cur.Store(s.buildState(eng, nil))
	return s, nil
}

// state returns the per-policy state for eng, rebuilding it when the
// policy in force changed since the last query.
func (s *Server) state(eng *rules.Engine) *policyState {
	if ps := s.cur.Load(); ps.eng == eng {
		return ps
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	old := s.cur.Load()
	if old.eng == eng {
		return old
	}
	ps := s.buildState(eng, old)
	s.setBudget(ps.set)
	s.cur.Store(ps)
	return ps
}

// setBudget applies dns.memory: the cache's share and the bindings' (the
// rest); both shed what is over as they are written to.
func (s *Server) setBudget(set rules.DNSSettings) {
	s.cache.setLimits(set.Cache)
	if s.cfg.Bindings != nil {
		s.cfg.Bindings.SetMaxBytes(set.BindingsBytes)
	}
}

// buildState derives the state for eng, keeping old's forwarder when
// the upstreams did not change (its connections and health stay).
func (s *Server) buildState(eng *rules.Engine, old *policyState) *policyState {
	ps := &policyState{eng: eng, set: eng.DNS().DNSSettings}
	if old != nil && slices.Equal(old.set.Upstreams, ps.set.Upstreams) && old.set.Timeout == ps.set.Timeout {
		ps.fwd = old.fwd
		return ps
	}
	ups, err := s.upstreams(ps.set)
	ps.fwd = newForwarder(ups, ps.set.Timeout, s.cfg.Roots, s.cfg.Dialer, err)
	if err != nil {
		s.cfg.Log.Zerolog().Error().Err(err).Msg("dns: no upstream; every forwarded query gets SERVFAIL")
	}
	return ps
}

// upstreams are the policy's, or the system's when it names none.
func (s *Server) upstreams(set rules.DNSSettings) ([]rules.DNSUpstream, error) {
	if set.Upstreams != nil {
		return set.Upstreams, nil
	}
	cc, err := dns.ClientConfigFromFile(s.cfg.ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("system resolvers from %s: %w", s.cfg.ResolvConf, err)
	}
	var out []rules.DNSUpstream
	for _, srv := range cc.Servers {
		ip, err := netip.ParseAddr(srv)
		if err != nil {
			continue // a scoped or odd entry the stub resolver may understand; we do not
		}
		port := uint16(53)
		if p, err := strconv.ParseUint(cc.Port, 10, 16); err == nil && p != 0 {
			port = uint16(p)
		}
		ap := netip.AddrPortFrom(ip.Unmap(), port)
		out = append(out, rules.DNSUpstream{Spec: ap.String(), Addr: ap})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("system resolvers from %s: no nameserver", s.cfg.ResolvConf)
	}
	return out, nil
}

// isSelf reports whether ap is one of the server's own listening
// addresses: forwarding there would loop.
func (s *Server) isSelf(ap netip.AddrPort) bool {
	p := s.self.Load()
	if p == nil {
		return false
	}
	for _, l := range *p {
		if l.Port() != ap.Port() {
			continue
		}
		if l.Addr() == ap.Addr() || l.Addr().IsUnspecified() && (ap.Addr().IsLoopback() || ap.Addr().IsUnspecified()) {
			return true
		}
	}
	return false
}

func (s *Server) addSelf(a net.Addr) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []netip.AddrPort
	if p := s.self.Load(); p != nil {
		cur = slices.Clone(*p)
	}
	cur = append(cur, ap)
	s.self.Store(&cur)
}

// ServePacket answers queries on a UDP socket until Shutdown.
func (s *Server) ServePacket(pc net.PacketConn) error {
	return s.serve(&dns.Server{PacketConn: pc, UDPSize: dns.MaxMsgSize}, pc.LocalAddr())
}

// ServeListener answers queries on TCP connections until Shutdown.
func (s *Server) ServeListener(ln net.Listener) error {
	max := s.cfg.MaxTCPConns
	if max <= 0 {
		max = DefaultMaxTCPConns
	}
	return s.serve(&dns.Server{Listener: netutil.LimitListener(ln, max), IdleTimeout: func() time.Duration { return 10 * time.Second }, MaxTCPQueries: 1000}, ln.Addr())
}

func (s *Server) serve(srv *dns.Server, a net.Addr) error {
	srv.Handler = s
	srv.MsgAcceptFunc = acceptMsg
	srv.MsgInvalidFunc = s.invalid
	srv.ReadTimeout = 5 * time.Second
	srv.WriteTimeout = 5 * time.Second
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("dnsfilter: server closed")
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.addSelf(a)
	err := srv.ActivateAndServe()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	return err
}

// acceptMsg is miekg's default acceptance, except that a message with
// other opcodes is answered NOTIMP by ServeDNS rather than here, so it
// gets an event.
func acceptMsg(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore // a response: answering it could be used to loop or amplify
	}
	if dh.Qdcount != 1 {
		return dns.MsgReject
	}
	if dh.Ancount > 1 || dh.Nscount > 0 || dh.Arcount > 2 {
		return dns.MsgReject
	}
	return dns.MsgAccept
}

// invalid counts and logs a packet that could not be parsed.
func (s *Server) invalid(m []byte, err error) {
	s.metrics.Malformed.Add(1)
	ps := s.cur.Load()
	if ps.set.Log == rules.DNSLogNone {
		return
	}
	s.cfg.Log.Log(&audit.Event{
		ID: s.cfg.Log.NewID(), Time: s.now(), Kind: "dns", Decision: "deny", Rule: RuleMalformed,
		Reason: fmt.Sprintf("malformed packet of %d bytes: %v", len(m), err),
	})
}

// Shutdown stops every listener; queries in flight finish or are cut
// when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	srvs := slices.Clone(s.servers)
	s.mu.Unlock()
	var errs []error
	for _, srv := range srvs {
		if err := srv.ShutdownContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Listen opens the UDP socket and the TCP listener of one DNS address
// ("127.0.0.1:5353", "[::1]:53", ":53"); with port 0 both get the same
// free port. The UDP socket has SO_REUSEPORT, so that ListenMore can add
// sockets on the same address.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	for range 20 {
		pc, err := reusePort.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns listen udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			return nil, nil, fmt.Errorf("dns listen tcp %s: %w", addr, err)
		}
	}
	return nil, nil, fmt.Errorf("dns listen %s: no port free for both UDP and TCP", addr)
}

// ListenMore opens n more UDP sockets on pc's address (from Listen),
// all or none. With SO_REUSEPORT the kernel spreads clients over them by
// their address, so that each socket's reads (one goroutine per socket in
// miekg/dns) run on their own CPU instead of queueing behind one.
func ListenMore(pc net.PacketConn, n int) ([]net.PacketConn, error) {
	var out []net.PacketConn
	for range n {
		c, err := reusePort.ListenPacket(context.Background(), "udp", pc.LocalAddr().String())
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, fmt.Errorf("dns listen udp %s (SO_REUSEPORT): %w", pc.LocalAddr(), err)
		}
		out = append(out, c)
	}
	return out, nil
}

// reusePort sets SO_REUSEPORT, as miekg/dns's Server.ReusePort does for
// the sockets it opens itself.
var reusePort = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}}
