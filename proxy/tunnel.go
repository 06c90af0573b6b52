package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect"
	"github.com/agentg/agentg/rules"
)

// A tunnel after its CONNECT was allowed. runTunnel takes the client
// connection as any door hands it over (with whatever bytes it already
// read still in it) and knows nothing of goproxy, so the transparent
// listener can call it too.
//
// A plain tunnel is dialed first (an unreachable upstream gets 502, not a
// tunnel that dies), then answered 200. No byte of the client's reaches
// the upstream before the gate has read the first bytes and decided:
//   - TLS: whole ClientHello records (dissect), SNI agreeing with the
//     tunnel's host, no ECH unless the policy allows it for the host; after
//     a HelloRetryRequest the second ClientHello is checked the same way.
//   - HTTP/1: the tunnel is served by the exchange path, so each request's
//     Host is decided, not trusted.
//   - anything else: relayed opaque.
// The upstream may speak first (SMTP, MySQL): its bytes reach the client
// at once, and the client's TLS or HTTP/1 after that is refused.

// maxHello bounds the records a ClientHello may take.
const maxHello = 64 << 10

func (s *Server) runTunnel(ctx context.Context, t *tunnel, client net.Conn) {
	defer s.tunnels.remove(t)
	defer client.Close()
	if !t.attach(client) {
		return
	}
	if t.intercepted {
		s.interceptTunnel(ctx, t, client)
		return
	}
	f := t.f
	up, err := s.dial.dialFlow(ctx, f)
	if err != nil {
		var ref *refusal
		if errors.Is(err, errSelf) {
			ref = denied(f) // the dialer found agentg itself
		} else {
			ref = &refusal{status: http.StatusBadGateway, text: "agentg: upstream " + f.host.String() + " unreachable: " + err.Error()}
			f.setStatus(ref.status, err.Error())
		}
		if !t.transparent {
			ref.close = true
			ref.response().Write(client)
		}
		return
	}
	if !t.attach(up) {
		return
	}
	defer up.Close()
	if !t.established(client) {
		return
	}
	// From here the tunnel may live for long: its open event is what a
	// crash would leave of it.
	s.events.emitOpen(f)

	g := &gate{hello: make(chan serverHello, 1)}
	act := newActivity()
	down := make(chan error, 1)
	go func() { down <- g.firstFromUpstream(client, up, f, act) }()

	br := bufio.NewReaderSize(client, 4096)
	proto, err := s.sniff(client, br)
	if err == nil && g.decide(proto) {
		err = errors.New("the client spoke " + proto.String() + " after the upstream spoke first")
	}
	if err != nil {
		f.deny(gateDeny(err))
		return
	}
	switch proto {
	case dissect.HTTP1:
		up.Close()
		<-down
		s.serveTunnelHTTP(ctx, t, &bufferedConn{Conn: client, br: br}, "http")
		return
	case dissect.TLS:
		if err := g.checkTLS(t, client, br, up, s.cfg.FirstBytesTimeout); err != nil {
			f.deny(gateDecision(err))
			return
		}
	}
	// Whatever the gate has read and passed, or the client's first
	// bytes of an opaque protocol, is still in br: it goes first.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
		f.up.Add(int64(n))
		br.Discard(n)
	}
	if relay(client, up, f, act, down, s.cfg.TunnelIdleTimeout) == errIdle {
		f.setStatus(http.StatusOK, fmt.Sprintf("closed after %s without a byte either way", s.cfg.TunnelIdleTimeout))
	}
}

// established answers a CONNECT's client that its tunnel is open (a
// transparent client sent none: it is told nothing) and records it.
func (t *tunnel) established(client net.Conn) bool {
	if !t.transparent {
		if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			t.f.setStatus(http.StatusOK, err.Error())
			return false
		}
	}
	t.f.setStatus(http.StatusOK, "")
	return true
}

// sniff waits (within FirstBytesTimeout) for enough of the client's first
// bytes to name the protocol.
func (s *Server) sniff(client net.Conn, br *bufio.Reader) (dissect.Protocol, error) {
	return sniffWithin(client, br, s.cfg.FirstBytesTimeout)
}

func sniffWithin(client net.Conn, br *bufio.Reader, wait time.Duration) (dissect.Protocol, error) {
	client.SetReadDeadline(time.Now().Add(wait))
	defer client.SetReadDeadline(time.Time{})
	for want := 1; ; want = br.Buffered() + 1 {
		if _, err := br.Peek(want); err != nil {
			return dissect.NeedMore, fmt.Errorf("reading the tunnel's first bytes: %w", err)
		}
		b, _ := br.Peek(br.Buffered())
		if p := dissect.Sniff(b); p != dissect.NeedMore {
			return p, nil
		}
	}
}

// gate is what the two directions of a plain tunnel tell each other while
// the handshake is read.
type gate struct {
	mu          sync.Mutex
	proto       dissect.Protocol // the client's, once sniffed
	serverFirst bool
	hello       chan serverHello // the upstream's first message, for a TLS client
}

// serverHello is what the upstream direction learned of the upstream's
// first message: a ServerHello, or why it could not be read.
type serverHello struct {
	dissect.ServerHello
	err error
}

// decide records the client's protocol and reports whether the upstream
// spoke before the client, which the gate cannot allow for TLS or HTTP/1.
func (g *gate) decide(p dissect.Protocol) (refused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proto = p
	return g.serverFirst && p != dissect.Unknown
}

// firstFromUpstream relays the upstream's first bytes to the client: for a
// TLS client, its ServerHello record by record, so the client direction
// learns whether a second ClientHello is coming. It returns nil when the
// relay may start.
func (g *gate) firstFromUpstream(client, up net.Conn, f *flow, act *activity) error {
	defer close(g.hello)
	buf := make([]byte, 4096)
	n, err := up.Read(buf)
	act.touch()
	g.mu.Lock()
	proto := g.proto
	if proto == dissect.NeedMore {
		g.serverFirst = true
	}
	g.mu.Unlock()
	if proto == dissect.HTTP1 {
		return errors.New("tunnel served as HTTP/1") // the upstream is closed unread
	}
	first := buf[:n]
	if proto == dissect.TLS && n > 0 {
		pr := &prefixReader{b: first, r: up}
		sh, b, herr := dissect.ReadServerHello(pr, maxHello)
		g.hello <- serverHello{sh, herr}
		if herr != nil && !errors.Is(herr, dissect.ErrAlert) {
			// Not a TLS server answer the gate can follow: nothing more
			// of the client's may pass, and nothing of this reaches it.
			return herr
		}
		first = append(b, pr.b...)
	}
	if len(first) > 0 {
		if _, werr := client.Write(first); werr != nil {
			return werr
		}
		f.down.Add(int64(len(first)))
	}
	if err != nil && n == 0 {
		return err
	}
	return nil
}

// checkTLS reads the client's ClientHello (each within wait), checks it
// and sends it on; after a HelloRetryRequest, the second one too.
func (g *gate) checkTLS(t *tunnel, conn net.Conn, br *bufio.Reader, up net.Conn, wait time.Duration) error {
	client := t.f
	read := func(second bool) error {
		var (
			h   dissect.Hello
			b   []byte
			err error
		)
		if second {
			h, b, err = dissect.ReadSecondClientHello(br, maxHello)
		} else {
			h, b, err = dissect.ReadClientHello(br, maxHello)
		}
		if err != nil {
			return err
		}
		if err := checkHello(t, h); err != nil {
			return err
		}
		if _, err := up.Write(b); err != nil {
			return err
		}
		client.up.Add(int64(len(b)))
		return nil
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	defer conn.SetReadDeadline(time.Time{})
	if err := read(false); err != nil {
		return err
	}
	// Nothing more of the client's goes upstream until the upstream's
	// first message says whether a second ClientHello is coming.
	conn.SetReadDeadline(time.Time{})
	sh, ok := <-g.hello
	switch {
	case !ok:
		return errors.New("the upstream closed before answering the ClientHello")
	case sh.err != nil && !errors.Is(sh.err, dissect.ErrAlert):
		return fmt.Errorf("the upstream's answer to the ClientHello: %w", sh.err)
	case sh.HelloRetry:
		conn.SetReadDeadline(time.Now().Add(wait))
		return read(true)
	}
	return nil
}

// helloRefusal is the gate's refusal of a hello that parsed.
type helloRefusal struct {
	rule, reason string
}

func (e *helloRefusal) Error() string { return e.reason }

func checkHello(t *tunnel, h dissect.Hello) error {
	if h.ECH && !t.allowECH {
		return &helloRefusal{"builtin:ech", "the ClientHello uses Encrypted Client Hello, which hides the server name the tunnel must agree with"}
	}
	if h.ServerName != "" {
		sni, err := addr.Canonical(h.ServerName)
		if err != nil || sni.Name != t.f.host.Name {
			return &helloRefusal{"builtin:sni-mismatch", fmt.Sprintf("TLS SNI %q does not match the CONNECT host %s", h.ServerName, t.f.host.Name)}
		}
	}
	return nil
}

// gateDecision names the rule behind a refusal of the TLS gate.
func gateDecision(err error) rules.Decision {
	var hr *helloRefusal
	if errors.As(err, &hr) {
		return rules.Decision{Action: rules.Deny, Rule: hr.rule, Reason: hr.reason}
	}
	return gateDeny(err)
}

func gateDeny(err error) rules.Decision {
	return rules.Decision{Action: rules.Deny, Rule: "builtin:tls-gate", Reason: err.Error()}
}
