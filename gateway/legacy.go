package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Upstreams that speak only the 2024-11-05 HTTP+SSE transport. The
// spec's backwards compatibility (2025-03-26 and later, basic/
// transports.mdx): a client POSTs its InitializeRequest to the server's
// URL; if that fails with a 4xx status, the server may be an old one, and
// the client GETs the URL, expecting an SSE stream whose first event is
// `endpoint`, and goes on in the old transport. The gateway does so for
// each server, once: a server found old is opened in the old transport
// from then on (for the life of the client session's upstream).
// Everything still goes through the guard: the GET stream and every POST
// to the endpoint it names (which forward sends to the policy's endpoint
// host, whatever the event says).

// legacyStatus are the answers to an initialize POST that say "not a
// Streamable HTTP server" (the spec's examples, 404 and 405, and the 400
// of servers that want a session id on every POST, as the SDKs' SSE
// handlers do).
var legacyStatus = map[int]bool{http.StatusBadRequest: true, http.StatusNotFound: true, http.StatusMethodNotAllowed: true}

// postProbe is an upstream session's HTTP while it opens in Streamable
// HTTP: it notes whether every POST was refused with a legacyStatus,
// which, if the opening fails, means the server is an old one.
type postProbe struct {
	next http.RoundTripper

	mu       sync.Mutex
	refused  bool // a POST got a legacyStatus
	accepted bool // a POST got anything else
}

func (p *postProbe) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost {
		return resp, err
	}
	p.mu.Lock()
	if legacyStatus[resp.StatusCode] {
		p.refused = true
	} else {
		p.accepted = true
	}
	p.mu.Unlock()
	return resp, err
}

// old reports a server that refused every POST as an old server would.
func (p *postProbe) old() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused && !p.accepted
}

// legacyTransport is the SDK's 2024-11-05 client transport, with the
// GET stream's life apart from the request that opens it: the SDK's
// transport ties the stream to the opening context, which is one client
// request's, while the session lives until the client's ends (Close).
type legacyTransport struct {
	sse sdk.SSEClientTransport
}

// Connect implements sdk.Transport: it opens the stream within ctx (the
// endpoint event must come before ctx ends), and keeps it open after.
func (t *legacyTransport) Connect(ctx context.Context) (sdk.Connection, error) {
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	c, err := t.sse.Connect(life)
	if !stop() {
		// ctx ended while the stream opened: the stream is cut.
		if err == nil {
			c.Close()
		}
		cancel()
		return nil, errors.Join(ctx.Err(), err)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &legacyConn{Connection: c, cancel: cancel}, nil
}

// legacyConn ends the GET stream's context with the connection.
type legacyConn struct {
	sdk.Connection
	cancel context.CancelFunc
}

func (c *legacyConn) Close() error {
	err := c.Connection.Close()
	c.cancel()
	return err
}
