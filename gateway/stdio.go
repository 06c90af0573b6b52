package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/gateway/child"
	"github.com/agentg/agentg/rules"
)

// Children is where the gateway finds the processes of the policy's
// command servers: agentg's supervisor (child.Supervisor).
type Children interface {
	Child(name string) (*child.Child, bool)
}

// stdioServers are the multiplexers of the command servers' children,
// one per supervised child (a reload that changes a server's command
// makes a new child, and with it a new multiplexer).
type stdioServers struct {
	mu   sync.Mutex
	byCh map[*child.Child]*stdioMux
}

func (s *stdioServers) mux(g *Gateway, ch *child.Child) *stdioMux {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byCh == nil {
		s.byCh = map[*child.Child]*stdioMux{}
	}
	m := s.byCh[ch]
	if m == nil {
		// A child the supervisor replaced is not asked for again: its
		// multiplexer goes with it.
		for old := range s.byCh {
			if old.Name() == ch.Name() {
				delete(s.byCh, old)
			}
		}
		m = &stdioMux{g: g, ch: ch}
		s.byCh[ch] = m
	}
	return m
}

// dialerFor is the Dialer of server b's upstream sessions: the stdio
// multiplexer for a command server, Config.Dial for one at an endpoint.
func (g *Gateway) dialerFor(b rules.ServerBinding) Dialer {
	if len(b.Command) > 0 {
		return stdioDialer{g}
	}
	return g.cfg.Dial
}

// stdioDialer opens upstream sessions with command servers: each is a
// guard session (mcp.Session, the guard's stream entry, as `agentg
// wrap` uses) on the server's one process, shared through the
// multiplexer.
type stdioDialer struct{ g *Gateway }

// Dial implements Dialer.
func (d stdioDialer) Dial(_ context.Context, u Upstream) (sdk.Transport, error) {
	if d.g.cfg.Children == nil {
		return nil, fmt.Errorf("mcp server %s is a command server, and this gateway runs none", u.Server.Name)
	}
	ch, ok := d.g.cfg.Children.Child(u.Server.Name)
	if !ok {
		return nil, fmt.Errorf("mcp server %s: no process (not started, or no longer in the policy)", u.Server.Name)
	}
	return &stdioTransport{g: d.g, mux: d.g.stdio.mux(d.g, ch), who: u.Who}, nil
}

// stdioTransport connects one upstream session to the child's current
// process.
type stdioTransport struct {
	g   *Gateway
	mux *stdioMux
	who Who
}

var errReloaded = errors.New("the policy was reloaded: the session with the server is opened again under the new one")

// stdioQueue bounds what waits for one session's SDK client to read it.
const stdioQueue = 1024

// Connect implements sdk.Transport. It waits (within ctx) for a running
// process: one that is being restarted after its backoff included.
func (t *stdioTransport) Connect(ctx context.Context) (sdk.Connection, error) {
	r, err := t.mux.run(ctx)
	if err != nil {
		return nil, err
	}
	eng := t.g.engine()
	c := &stdioConn{run: r, in: make(chan []byte, stdioQueue), done: make(chan struct{}), ids: map[string]string{},
		eng: eng, policy: t.g.engine}
	c.sess = t.g.cfg.Guard.NewSession(mcp.Exchange{Engine: eng, Agent: t.who.Agent, Client: t.who.Client,
		Server: t.mux.ch.Name(), Door: Door},
		mcp.SessionIO{ToServer: func(b []byte) error { return r.fromClient(c, b) }, ToClient: c.toClient})
	if !r.attach(c) {
		c.sess.Close(child.ErrExited)
		return nil, fmt.Errorf("mcp server %s: %w", t.mux.ch.Name(), child.ErrExited)
	}
	return c, nil
}

// stdioConn is one upstream session on a child: the SDK client's
// messages go through its guard session to the multiplexer, the child's
// (routed to it) through the guard session to the SDK client.
type stdioConn struct {
	run  *stdioRun
	sess *mcp.Session
	ids  map[string]string // this session's requests in flight: its id -> the child's (run.mu)
	// eng is the policy its guard session decides with, for its life;
	// policy the one in force now (see Write).
	eng    *rules.Engine
	policy func() *rules.Engine

	in     chan []byte
	mu     sync.Mutex
	closed bool
	stale  bool // a reload came: no more writes (Write)
	done   chan struct{}
}

// Read implements sdk.Connection: what the guard let through to the
// client, then, once the session has ended, io.EOF.
func (c *stdioConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case b := <-c.in:
		return jsonrpc.DecodeMessage(b)
	default:
	}
	select {
	case b := <-c.in:
		return jsonrpc.DecodeMessage(b)
	case <-c.done:
		select {
		case b := <-c.in: // what was queued before the end is read first
			return jsonrpc.DecodeMessage(b)
		default:
		}
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Write implements sdk.Connection: the SDK client's message meets the
// guard.
//
// A guard stream session decides with the policy it was opened under; a
// reload must reach the next call all the same. So a request written
// after a reload ends this session (what it has in flight gets an error)
// and fails as a closed connection, before any byte of it is decided or
// sent: the upstream session is opened again, under the new policy, and
// the request sent there (upstream.do).
func (c *stdioConn) Write(_ context.Context, msg jsonrpc.Message) error {
	if c.isClosed() {
		return sdk.ErrConnectionClosed
	}
	if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall() && c.policy() != c.eng {
		// Only writes end here: the read side stays until the SDK
		// client closes the session (Close), so this call's error is
		// the closed connection (sent again), never an EOF.
		c.mu.Lock()
		c.stale = true
		c.mu.Unlock()
		return sdk.ErrConnectionClosed
	}
	b, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		return err
	}
	c.sess.FromClient(b)
	return nil
}

// Close implements sdk.Connection: the session leaves the child.
func (c *stdioConn) Close() error {
	c.mu.Lock()
	why := errors.New("the client's session closed")
	if c.stale {
		why = errReloaded
	}
	c.mu.Unlock()
	if !c.shut() {
		return nil
	}
	c.run.detach(c)
	c.sess.Close(why)
	return nil
}

// SessionID implements sdk.Connection: a stdio stream has none.
func (c *stdioConn) SessionID() string { return "" }

// fail ends the session because its process ended: the guard answers
// what is in flight with why, and then the client reads the end.
func (c *stdioConn) fail(why error) {
	c.sess.Close(why)
	if c.shut() {
		c.run.detach(c)
	}
}

// shut marks the connection closed; false if it was already.
func (c *stdioConn) shut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	close(c.done)
	return true
}

func (c *stdioConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.stale
}

// toClient queues what the guard lets through to the client. A client
// that does not read is not waited for: its session is closed.
func (c *stdioConn) toClient(b []byte) error {
	select {
	case c.in <- append([]byte(nil), b...):
		return nil
	default:
	}
	if c.shut() {
		go func() {
			c.run.detach(c)
			c.sess.Close(errors.New("the client's session does not read its messages"))
		}()
	}
	return errors.New("agentg gateway: the client's session does not read its messages")
}

// deliver hands one line of the child's, routed to this session, to its
// guard.
func (c *stdioConn) deliver(b []byte) { c.sess.FromServer(b) }

func (c *stdioConn) deliverMsg(m *stdioMsg) {
	b, err := m.encode()
	if err != nil {
		return
	}
	c.deliver(b)
}
