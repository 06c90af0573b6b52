package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/rules"
)

// The leak guard and placeholders on the exchange path (issue 16).
// serveExchange calls guardCredentials once every check allowed a
// request, before a binding attaches anything. It looks, with one scan
// per text (creds.Guard), for every value agentg holds and every
// agentg:NAME placeholder in:
//
//   - the destination's name and every header (names and values, the
//     agent's own Authorization too), as sent and percent-decoded;
//   - the URL's path and query, as sent and percent-decoded;
//   - the body's first part, leakBodyMax bytes (all of it when shorter),
//     as sent, percent-decoded and JSON-unescaped; a gzip or deflate body
//     is decoded first (as far as its first part goes), one in another
//     coding is refused. A POST to a server mcp.servers governs is left
//     to the MCP guard, which asks the same question of each message
//     (dissect/mcp, enforce.go) and answers in JSON-RPC.
//
// A value may go, and a placeholder is swapped for its value, only with a
// request some binding of its secret matches (rules.Credentials.Binds),
// or toward a host a runtime value was held for; anything else is
// refused 403, one event naming the secret (rule builtin:credential-leak
// or builtin:placeholder), never its value, and nothing is forwarded. A
// placeholder that names no secret is refused too. What is beyond the
// first part of a body is not looked at: the guard stops an agent from
// handing a key on by mistake or by a prompt's instruction, not one
// that encodes it first (see the README).

// leakBodyMax is how much of a request body the leak guard reads before
// anything is forwarded, and where placeholders are swapped.
const leakBodyMax = 64 << 10

// Rule ids of the guard's refusals.
const (
	ruleLeak        = "builtin:credential-leak"
	rulePlaceholder = "builtin:placeholder"
)

// useCredentials points the leak guard at eng's secrets and reads them
// all now, in the background; the outcome is logged (names only).
func (s *Server) useCredentials(eng *rules.Engine) {
	done := s.leaks.Use(context.Background(), eng.Credentials().Store())
	go func() {
		rep, ok := <-done
		if !ok || len(rep.Read)+len(rep.Short)+len(rep.Failed) == 0 {
			return // the store in use already, or a policy without secrets
		}
		for name, err := range rep.Failed {
			s.log.Warn().Str("secret", name).Err(err).Msg("leak guard: a secret could not be read; its value is looked for once it is")
		}
		if len(rep.Short) > 0 {
			s.log.Warn().Strs("secrets", rep.Short).Msgf("leak guard: values shorter than %d bytes are injected but not looked for", creds.MinGuarded)
		}
		s.log.Info().Strs("guarded", rep.Read).Msg("leak guard: secrets read")
	}()
}

// leakCheck is one request's question to the leak guard.
type leakCheck struct {
	s    *Server
	eng  *rules.Engine
	f    *flow
	r    *http.Request
	hits []creds.Hit
	// where each hit was found, in the order of hits
	where []place
	swap  bool // a placeholder to swap
}

// place is where in a request a hit was found.
type place struct {
	what   string // placeHeader, placePath, placeQuery, ...
	header string // placeHeader: its name
}

const (
	placeHost   = "the destination"
	placePath   = "the URL path"
	placeQuery  = "the URL query"
	placeName   = "a header name"
	placeHeader = "header"
	placeBody   = "the body"
)

func (p place) String() string {
	if p.what == placeHeader {
		return "header " + p.header
	}
	return p.what
}

func (c *leakCheck) scan(where place, text string, forms creds.Form) {
	n := len(c.hits)
	c.hits = c.s.leaks.ScanString(text, forms, c.hits)
	for range len(c.hits) - n {
		c.where = append(c.where, where)
	}
}

func (c *leakCheck) scanBytes(where place, text []byte, forms creds.Form) {
	n := len(c.hits)
	c.hits = c.s.leaks.ScanBytes(text, forms, c.hits)
	for range len(c.hits) - n {
		c.where = append(c.where, where)
	}
}

// allowed reports whether name's value may go with the request.
func (c *leakCheck) allowed(name string) bool {
	if c.eng.Credentials().Binds(rules.CredentialUse{Secret: name, Agent: c.f.agent, Host: c.f.host, Scheme: c.f.scheme, Path: c.r.URL.Path, Server: c.f.toServer}) {
		return true
	}
	return c.s.leaks.Held().Allows(name, c.f.host.Name)
}

// guardCredentials runs the leak guard on r (see above) and swaps the
// placeholders it may. A non-nil refusal is the answer instead.
func (s *Server) guardCredentials(eng *rules.Engine, f *flow, r *http.Request) (ref *refusal, why string) {
	if !s.leaks.Active() {
		return nil, ""
	}
	if len(r.Trailer) > 0 {
		return s.leakRefusal(f, ruleLeak, "", "the request announces trailers, which the leak guard cannot read before they are sent"), ""
	}
	c := &leakCheck{s: s, eng: eng, f: f, r: r}
	c.scan(place{what: placeHost}, f.host.Name, creds.FormRaw)
	c.scan(place{what: placePath}, r.URL.EscapedPath(), creds.FormRaw|creds.FormPercent)
	c.scan(place{what: placeQuery}, r.URL.RawQuery, creds.FormRaw|creds.FormPercent)
	for k, vs := range r.Header {
		c.scan(place{what: placeName}, k, creds.FormRaw)
		for _, v := range vs {
			c.scan(place{what: placeHeader, header: k}, v, creds.FormRaw|creds.FormPercent)
		}
	}
	body, ref := s.leakBody(c, r)
	if ref != nil {
		return ref, ""
	}
	defer body.release()
	if ref := c.decide(); ref != nil {
		return ref, ""
	}
	if !c.swap {
		return nil, ""
	}
	if err := c.swapAll(&body); err != nil {
		var ce *creds.Error
		if errors.As(err, &ce) {
			f.mu.Lock()
			f.credential = ce.Secret
			f.mu.Unlock()
			return &refusal{status: http.StatusBadGateway,
				text: "agentg: the credential " + ce.Secret + " a placeholder stands for could not be read; the request was not sent"}, err.Error()
		}
		return s.leakRefusal(f, rulePlaceholder, "", err.Error()), ""
	}
	return nil, ""
}

// decide refuses the request for its first hit that may not go, and
// notes whether placeholders are to be swapped. The event's path is
// masked when a value that may go is in it.
func (c *leakCheck) decide() *refusal {
	for i, h := range c.hits {
		switch {
		case h.Placeholder && h.Unknown:
			return c.s.leakRefusal(c.f, rulePlaceholder, h.Name,
				"placeholder agentg:"+h.Name+" in "+c.where[i].String()+" names no secret agentg holds")
		case !c.allowed(h.Name) && h.Placeholder:
			return c.s.leakRefusal(c.f, rulePlaceholder, h.Name,
				"placeholder agentg:"+h.Name+" in "+c.where[i].String()+" toward "+c.f.host.Name+", which no binding of secret "+h.Name+" names")
		case !c.allowed(h.Name):
			return c.s.leakRefusal(c.f, ruleLeak, h.Name,
				"the value of secret "+h.Name+" in "+c.where[i].String()+" toward "+c.f.host.Name+", which no binding of it names")
		case h.Placeholder:
			c.swap = true
		case c.where[i].what == placePath:
			c.f.path = c.s.leaks.Mask(c.f.path)
		}
	}
	return nil
}

// leakRefusal is the guard's 403: one event naming the secret, never a
// value.
func (s *Server) leakRefusal(f *flow, rule, secret, reason string) *refusal {
	// The reason names where the value was (a header's name, which may
	// hold another value), so it is masked like the path.
	f.decision = rules.Decision{Action: rules.Deny, Rule: rule, Reason: s.leaks.Mask(reason)}
	f.mu.Lock()
	f.credential = secret
	f.path = s.leaks.Mask(f.path)
	// A value in the destination's name: the request is refused, and
	// its event names the destination masked (nothing is dialled).
	f.host.Name = s.leaks.Mask(f.host.Name)
	f.mu.Unlock()
	return denied(f)
}

// leakBody is the body's first part as the guard holds it: the bytes
// read (put back in front of the rest for the forwarder), and their
// decoded form when the body has a Content-Encoding.
type leakBody struct {
	raw     []byte // nil: no body looked at
	decoded bool   // a Content-Encoding was undone to look
	buf     *[]byte
	r       *http.Request
	f       *flow
}

var leakBufs = sync.Pool{New: func() any { b := make([]byte, leakBodyMax); return &b }}

// leakBody reads r's body's first part and scans it, unless the MCP guard
// will read the body itself (it asks the guard of each message).
func (s *Server) leakBody(c *leakCheck, r *http.Request) (leakBody, *refusal) {
	lb := leakBody{r: r, f: c.f}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return lb, nil
	}
	if c.f.toServer != "" && s.cfg.MCP != nil && s.cfg.MCP.Leaks == s.leaks {
		// A door of agentg's own sends a server's request (Send) that
		// its MCP guard read message by message, asking this guard.
		return lb, nil
	}
	if r.Method == http.MethodPost && s.cfg.MCP != nil && s.cfg.MCP.Leaks == s.leaks {
		// A governed server's POST is MCP or refused, and the MCP guard
		// asks this guard of each message (answering in JSON-RPC).
		// Elsewhere the MCP guard passes what is not MCP unread, and one
		// that asks no leak guard (or another) checks nothing: the body
		// is looked at here.
		if x, ok := s.mcpExchange(c.f, r); ok && x.Governed() {
			return lb, nil
		}
	}
	lb.buf = leakBufs.Get().(*[]byte)
	n := leakBodyMax
	if r.ContentLength > 0 && r.ContentLength < int64(n) {
		n = int(r.ContentLength)
	}
	// All of a shorter body (EOF), or its first leakBodyMax bytes.
	got, err := io.ReadFull(r.Body, (*lb.buf)[:n])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		lb.release()
		return leakBody{}, &refusal{status: http.StatusBadRequest, text: "agentg: could not read the request body: " + err.Error(), close: true}
	}
	lb.raw = (*lb.buf)[:got]
	r.Body = newPrefixBody(lb.raw, r.Body)
	text := lb.raw
	if enc := strings.TrimSpace(strings.Join(r.Header.Values("Content-Encoding"), ",")); enc != "" && !strings.EqualFold(enc, "identity") {
		d, err := decodePrefix(lb.raw, enc)
		if err != nil {
			lb.release()
			ref := s.leakRefusal(c.f, ruleLeak, "", "the body's "+err.Error()+": the leak guard cannot look into it")
			ref.status = http.StatusUnsupportedMediaType
			return leakBody{}, ref
		}
		text, lb.decoded = d, true
	}
	c.scanBytes(place{what: placeBody}, text, creds.FormRaw|creds.FormPercent|creds.FormJSON)
	return lb, nil
}

// release gives the buffer back once the body is not read from it: the
// guard refused (nothing is forwarded), or the prefix was copied.
func (lb *leakBody) release() {
	if lb.buf == nil {
		return
	}
	if pb, ok := lb.r.Body.(*prefixBody); ok && !pb.copied {
		// Still forwarded from the buffer: it goes back when the
		// forwarder closes the body, or when the exchange ends (a reader
		// that replaced the body, the MCP guard's, may never close it).
		pb.mu.Lock()
		pb.buf = lb.buf
		pb.mu.Unlock()
		lb.buf = nil
		lb.f.prefix = pb
		return
	}
	leakBufs.Put(lb.buf)
	lb.buf = nil
}

// prefixBody is the body with its first part read: that part, then the
// rest as the client sends it. The forwarder's transport may close a body
// from another goroutine while it is still read (an upstream that answers
// before it has the whole body), so reading the first part and closing
// are serialised: Close gives the pooled buffer back at once, and a Read
// after it reads nothing from it. The buffer always goes back to the
// pool; a body whose buffer were left to the collector instead would
// cost a 64 KiB allocation per request.
type prefixBody struct {
	mu     sync.Mutex
	head   []byte // what is left of the first part
	rest   io.ReadCloser
	buf    *[]byte // the pooled buffer head is in; nil: none
	copied bool    // head is not in a pooled buffer
	closed bool
}

func newPrefixBody(head []byte, rest io.ReadCloser) *prefixBody {
	return &prefixBody{head: head, rest: rest}
}

func (b *prefixBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errBodyClosed
	}
	if len(b.head) == 0 {
		b.mu.Unlock()
		return b.rest.Read(p)
	}
	n := copy(p, b.head)
	b.head = b.head[n:]
	b.mu.Unlock()
	return n, nil
}

func (b *prefixBody) Close() error {
	b.done()
	return b.rest.Close()
}

// done ends the reading of the first part and gives its buffer back:
// at Close, or when the exchange ends (serveExchange), whichever comes
// first. It is safe to call more than once; nil does nothing.
func (b *prefixBody) done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.closed, b.head = true, nil
	if b.buf != nil {
		leakBufs.Put(b.buf)
		b.buf = nil
	}
	b.mu.Unlock()
}

// errBodyClosed is what a Read of a closed prefixBody returns.
var errBodyClosed = errors.New("agentg: read of a closed request body")

// decodePrefix undoes enc on the first part of a body, as far as it goes
// (a cut stream is decoded up to the cut), to at most leakBodyMax bytes.
func decodePrefix(raw []byte, enc string) ([]byte, error) {
	codings := strings.Split(enc, ",")
	out := raw
	for i := len(codings) - 1; i >= 0; i-- {
		var zr io.Reader
		switch c := strings.ToLower(strings.TrimSpace(codings[i])); c {
		case "", "identity":
			continue
		case "gzip", "x-gzip":
			g, err := gzip.NewReader(bytes.NewReader(out))
			if err != nil {
				return nil, errors.New("gzip coding does not decode")
			}
			zr = g
		case "deflate":
			if z, err := zlib.NewReader(bytes.NewReader(out)); err == nil {
				zr = z
			} else {
				zr = flate.NewReader(bytes.NewReader(out))
			}
		default:
			return nil, errors.New("Content-Encoding " + c + " is one agentg cannot decode")
		}
		d, err := io.ReadAll(io.LimitReader(zr, leakBodyMax))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && len(d) == 0 {
			return nil, errors.New(codings[i] + " coding does not decode")
		}
		out = d
	}
	return out, nil
}

// swapAll puts each placeholder's value where the placeholder is, in the
// form it was found: headers as sent, the URL's path and query decoded
// and encoded again, the body's first part as sent (JSON-escaped in a
// JSON body, form-encoded in a form). A placeholder found only in a form
// agentg does not rewrite (percent-encoded in a header, escaped in a
// body, inside a compressed body) is refused: sending it on would hand
// the upstream a placeholder, and the agent a puzzling failure.
func (c *leakCheck) swapAll(body *leakBody) error {
	vals := map[string]string{}
	for i, h := range c.hits {
		if !h.Placeholder {
			continue
		}
		if _, ok := vals[h.Name]; !ok {
			sec, err := c.s.leaks.Lookup(c.r.Context(), h.Name)
			if err != nil {
				return err
			}
			vals[h.Name] = sec.Reveal()
			c.f.mu.Lock()
			c.f.swapped = joinNames(c.f.swapped, h.Name)
			c.f.mu.Unlock()
		}
		raw := h.Form == creds.FormRaw
		switch w := c.where[i]; {
		case w.what == placePath || w.what == placeQuery:
		case w.what == placeBody && body.decoded:
			return errors.New("placeholder agentg:" + h.Name + " is inside a compressed body, where agentg does not swap it")
		case !raw:
			return errors.New("placeholder agentg:" + h.Name + " in " + w.String() + " is encoded, and agentg swaps a placeholder only as written")
		}
	}
	r := c.r
	for k, vs := range r.Header {
		for i, v := range vs {
			vs[i] = creds.SwapPlaceholders(v, vals, nil)
		}
		r.Header[k] = vs
	}
	if p := r.URL.EscapedPath(); strings.Contains(p, "agentg") {
		segs := strings.Split(p, "/")
		for i, sg := range segs {
			if d, err := url.PathUnescape(sg); err == nil {
				if sw := creds.SwapPlaceholders(d, vals, nil); sw != d {
					segs[i] = url.PathEscape(sw)
				}
			}
		}
		raw := strings.Join(segs, "/")
		dec, err := url.PathUnescape(raw)
		if err != nil {
			return errors.New("the URL path does not decode")
		}
		r.URL.Path, r.URL.RawPath = dec, raw
	}
	if q := r.URL.RawQuery; strings.Contains(q, "agentg") {
		parts := strings.Split(q, "&")
		for i, kv := range parts {
			k, v, eq := strings.Cut(kv, "=")
			dk, err1 := url.QueryUnescape(k)
			dv, err2 := url.QueryUnescape(v)
			if err1 != nil || err2 != nil {
				continue
			}
			sk, sv := creds.SwapPlaceholders(dk, vals, nil), creds.SwapPlaceholders(dv, vals, nil)
			if sk == dk && sv == dv {
				continue
			}
			parts[i] = url.QueryEscape(sk)
			if eq {
				parts[i] += "=" + url.QueryEscape(sv)
			}
		}
		r.URL.RawQuery = strings.Join(parts, "&")
	}
	if body.raw != nil && !body.decoded && bytes.Contains(body.raw, []byte(creds.PlaceholderPrefix)) {
		esc := bodyEscaper(r.Header.Get("Content-Type"))
		out := creds.SwapPlaceholders(string(body.raw), vals, esc)
		pb := r.Body.(*prefixBody)
		pb.head, pb.copied = []byte(out), true
		if r.ContentLength >= 0 {
			r.ContentLength += int64(len(out) - len(body.raw))
		}
	}
	return nil
}

// bodyEscaper writes a value into a body of the content type ct.
func bodyEscaper(ct string) func(string) string {
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/x-www-form-urlencoded":
		return url.QueryEscape
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return creds.JSONEscape
	}
	return nil
}

// joinNames joins two lists of names (comma-separated), each name once:
// the event's credential names what a binding attached and what
// placeholders stood for.
func joinNames(a, b string) string {
	if a == "" || a == b {
		return b
	}
	if b == "" {
		return a
	}
	out := a
	for n := range strings.SplitSeq(b, ",") {
		if !slices.Contains(strings.Split(out, ","), n) {
			out += "," + n
		}
	}
	return out
}

// hostLeak refuses a destination whose name carries a value agentg holds
// (a key made into a subdomain), whatever the bindings say: no binding
// sends a secret in a host name. It runs before the host is decided,
// resolved or dialled, at every door, so that no tunnel's event names the
// destination unmasked; the refusal's event names it masked.
func (p *pipeline) hostLeak(f *flow) *refusal {
	if !p.leaks.Active() {
		return nil
	}
	var buf [2]creds.Hit
	for _, h := range p.leaks.ScanString(f.host.Name, creds.FormRaw, buf[:0]) {
		if h.Placeholder {
			continue
		}
		f.decision = rules.Decision{Action: rules.Deny, Rule: ruleLeak, Reason: "the value of secret " + h.Name + " in the destination's name"}
		f.mu.Lock()
		f.credential = h.Name
		f.host.Name = p.leaks.Mask(f.host.Name)
		f.mu.Unlock()
		return denied(f)
	}
	return nil
}
