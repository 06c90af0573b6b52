package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/rules"
)

// guardTransport is the http.RoundTripper of an upstream session's SDK
// client: every request it is given is served by the MCP guard, as a
// client's request through the proxy is, and what the guard lets through
// goes to the server by forward. The SDK client reads the guard's answer,
// filtered and rewritten, as if it were the server's.
type guardTransport struct {
	g    *Gateway
	bind rules.ServerBinding
	who  Who
	host addr.Host
	end  *url.URL     // the endpoint, parsed once; its scheme says the leak guard's bindings are for https unless they say otherwise
	out  *http.Client // the outbound client; it follows no redirect
}

func newGuardTransport(g *Gateway, b rules.ServerBinding, who Who) (*guardTransport, error) {
	u, err := url.Parse(b.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s endpoint: %w", b.Name, err)
	}
	port := uint16(80)
	if u.Scheme == "https" {
		port = 443
	}
	h, err := addr.ParseAuthority(u.Host, port)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s endpoint %s: %w", b.Name, b.Endpoint, err)
	}
	out := *g.client
	// A redirect would send the session elsewhere than the endpoint the
	// policy names: the guard sees the 3xx as the answer instead.
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &guardTransport{g: g, bind: b, who: who, host: h, end: u, out: &out}, nil
}

// RoundTrip serves req through the guard and returns its answer as soon
// as the guard has written the status, streaming the body.
func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := t.host.Name
	if host == "" {
		host = t.host.IP.String()
	}
	var up http.Handler = http.HandlerFunc(t.forward)
	if f := t.g.cfg.Forward; f != nil {
		if h := f(t.bind); h != nil {
			up = h
		}
	}
	x := mcp.Exchange{
		Upstream: up,
		Engine:   t.g.engine(),
		Agent:    t.who.Agent,
		Server:   t.bind.Name,
		URL:      t.bind.Endpoint,
		Client:   t.who.Client,
		Host:     host,
		Port:     t.host.Port,
		Path:     req.URL.Path,
		Scheme:   t.end.Scheme,
		Door:     Door,
	}
	in := inboundOf(req.Context())
	if in != nil {
		x.Parent = in.parent
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, body: pw, ready: make(chan struct{})}
	// The guard reads a server-side request: no RequestURI, a Host.
	sreq := req.Clone(req.Context())
	sreq.Host = req.URL.Host
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				// Cut short (the forwarder's ErrAbortHandler, or worse):
				// the client must see a broken body, never a short one
				// that reads as whole.
				w.WriteHeader(http.StatusBadGateway)
				pw.CloseWithError(fmt.Errorf("gateway: the exchange was cut short: %v", p))
				return
			}
			w.WriteHeader(http.StatusOK) // a guard that wrote nothing answered nothing
			pw.Close()
		}()
		t.g.cfg.Guard.Serve(w, sreq, x)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	var body io.ReadCloser = pr
	if in != nil && in.closeStream != nil && req.Method == http.MethodPost &&
		strings.HasPrefix(w.sent.Get("Content-Type"), "text/event-stream") {
		body = newCloseWatch(pr, in.closeStream)
	}
	return &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: body, ContentLength: -1, Request: req,
	}, nil
}

// forward sends what the guard let through to the server, as the
// agent's request (Config.Send: decided as the agent, its credentials
// attached, the answer streamed into the guard's writer), or else through
// the outbound client.
func (t *guardTransport) forward(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host, out.Host = t.end.Scheme, t.end.Host, t.end.Host
	if send := t.g.cfg.Send; send != nil {
		if err := send(w, out, t.who, t.bind.Name); err != nil && r.Context().Err() == nil {
			t.g.unreachable(t.who, t.bind.Name, r.Method, errorText(err))
		}
		return
	}
	resp, err := t.out.Do(out)
	if err != nil {
		if r.Context().Err() == nil {
			t.g.unreachable(t.who, t.bind.Name, r.Method, errorText(err))
		}
		http.Error(w, "agentg gateway: mcp server "+t.bind.Name+" unreachable: "+errorText(err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if hopHeader[http.CanonicalHeaderKey(k)] {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	bp := t.g.bufs.Get().(*[]byte)
	defer t.g.bufs.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// errorText is err without the URL net/http puts in front (the endpoint
// is in the event already, and may carry a query).
func errorText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// hopHeader are the headers one hop's answer does not pass on (RFC 9110
// 7.6.1), and Content-Length: the guard may rewrite the body.
var hopHeader = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

// pipeWriter is the guard's http.ResponseWriter for a request the
// gateway's own client sent: the status and headers become the
// response's, the body flows through a pipe as the guard writes it.
type pipeWriter struct {
	header http.Header
	body   *io.PipeWriter
	sent   http.Header
	status int
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone() // the response's own: later changes to w's do not race with its reader
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush does nothing: every Write reaches the reader before it returns.
func (w *pipeWriter) Flush() {}
