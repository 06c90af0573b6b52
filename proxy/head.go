package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// net/http deletes the Host header of an absolute-form request before a
// handler sees it (RFC 9112 says a proxy ignores it). agentg refuses such a
// request instead, because an upstream that routes on Host would otherwise
// serve a different site than the one the policy checked. To see the header
// the client really sent, each client connection is read through a small
// HTTP/1 framer that notes the Host of every request head, in order; the
// handler takes the note for its request.

type trackListener struct {
	net.Listener
	s *Server
}

func (l trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &hostConn{Conn: c, s: l.s}, nil
}

type connKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*hostConn); ok {
		return context.WithValue(ctx, connKey{}, hc)
	}
	return ctx
}

// head is what the framer noted of one request head.
type head struct {
	host    string
	hasHost bool
}

// headOf returns the noted head of r. ok is false when the framer lost
// track of the stream; the caller then refuses the request.
func headOf(r *http.Request) (head, bool) {
	hc, _ := r.Context().Value(connKey{}).(*hostConn)
	if hc == nil {
		return head{}, false
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if len(hc.heads) == 0 {
		return head{}, false
	}
	h := hc.heads[0]
	hc.heads = hc.heads[1:]
	return h, true
}

// maxHead bounds what the framer buffers; net/http refuses larger heads.
const maxHead = 1 << 20

type framerState uint8

const (
	stHead framerState = iota
	stBody
	stChunkSize
	stChunkData
	stChunkCRLF
	stTrailer
	stDone // CONNECT, Upgrade or garbage: no more HTTP/1 on this stream
)

type hostConn struct {
	net.Conn
	s       *Server
	mu      sync.Mutex
	state   framerState
	buf     []byte // the head, chunk-size line or trailer being read
	remain  int64  // body or chunk bytes still to skip
	heads   []head
	chunked bool
}

func (c *hostConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if c.state != stDone {
			c.feed(p[:n])
		}
		c.mu.Unlock()
	}
	return n, err
}

// Write notices net/http refusing a request it could not parse (it writes
// its error straight to the connection, and no handler ever runs), so
// that malformed input gets its audit event like everything else.
func (c *hostConn) Write(p []byte) (int, error) {
	if c.s != nil {
		if status, reason, ok := parseServerError(p); ok {
			c.s.logMalformed(c.RemoteAddr().String(), status, reason)
		}
	}
	return c.Conn.Write(p)
}

// serverErrorHeaders is what net/http's server puts between the status
// line and the body of the errors it writes without a handler. Responses
// that pass through a handler always carry a Date header, so they never
// match.
const serverErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func parseServerError(p []byte) (status int, reason string, ok bool) {
	rest, found := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !found || len(rest) < 4 || rest[0] < '4' || rest[0] > '5' {
		return 0, "", false
	}
	line, body, found := bytes.Cut(rest, []byte(serverErrorHeaders))
	if !found || bytes.IndexByte(line, '\n') >= 0 {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil {
		return 0, "", false
	}
	return status, string(body), true
}

func (c *hostConn) done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stDone
}

// ReadFrom keeps the kernel's splice path for the upstream→client copy of
// a tunnel.
func (c *hostConn) ReadFrom(r io.Reader) (int64, error) {
	if t, ok := r.(*tunnelConn); ok {
		if rf, ok := c.Conn.(io.ReaderFrom); ok {
			return t.splice(&t.f.down, func() (int64, error) { return rf.ReadFrom(t.Conn) })
		}
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *hostConn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return nil
}

func (c *hostConn) CloseRead() error {
	if hc, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return hc.CloseRead()
	}
	return nil
}

// unwrapReader hands the raw client connection of a finished HTTP stream
// (a tunnel) to the kernel's splice path.
func unwrapReader(r io.Reader) io.Reader {
	if hc, ok := r.(*hostConn); ok && hc.done() {
		return hc.Conn
	}
	return r
}

func (c *hostConn) feed(p []byte) {
	for len(p) > 0 && c.state != stDone {
		switch c.state {
		case stHead, stTrailer, stChunkSize:
			end := []byte("\n")
			if c.state != stChunkSize {
				end = []byte("\r\n\r\n")
			}
			if c.state == stHead && len(c.buf) == 0 {
				// Blank lines before a request line are skipped by servers.
				for len(p) > 0 && (p[0] == '\r' || p[0] == '\n') {
					p = p[1:]
				}
				if len(p) == 0 {
					return
				}
			}
			old := len(c.buf)
			c.buf = append(c.buf, p...)
			i := bytes.Index(c.buf, end)
			if c.state == stTrailer && bytes.HasPrefix(c.buf, []byte("\r\n")) {
				i, end = 0, []byte("\r\n") // no trailers: the empty line ends the body
			}
			if i < 0 {
				if len(c.buf) > maxHead {
					c.state = stDone
				}
				return
			}
			used := i + len(end) - old
			p = p[used:]
			line := c.buf[:i]
			switch c.state {
			case stHead:
				c.endHead(line)
			case stTrailer:
				c.state = stHead
			case stChunkSize:
				c.endChunkSize(line)
			}
			c.buf = c.buf[:0]
		case stBody, stChunkData, stChunkCRLF:
			k := min(int64(len(p)), c.remain)
			p = p[k:]
			c.remain -= k
			if c.remain > 0 {
				continue
			}
			switch c.state {
			case stBody:
				c.state = stHead
			case stChunkData:
				c.state, c.remain = stChunkCRLF, 2
			case stChunkCRLF:
				c.state = stChunkSize
			}
		}
	}
}

func (c *hostConn) endHead(h []byte) {
	reqLine, rest, _ := bytes.Cut(h, []byte("\n"))
	method, _, _ := bytes.Cut(reqLine, []byte(" "))
	var hd head
	var length int64
	chunked, upgrade, nhost := false, false, 0
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		l = bytes.TrimRight(l, "\r")
		name, val, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			hd.host, hd.hasHost = string(val), true
			nhost++
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, _ = strconv.ParseInt(string(val), 10, 64)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = true
		}
	}
	if nhost > 1 {
		hd.host = "" // net/http refuses it anyway; never match
	}
	c.heads = append(c.heads, hd)
	switch {
	case string(method) == http.MethodConnect, upgrade:
		c.state = stDone
	case chunked:
		c.state = stChunkSize
	case length > 0:
		c.state, c.remain = stBody, length
	default:
		c.state = stHead
	}
}

func (c *hostConn) endChunkSize(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
	switch {
	case err != nil || n < 0:
		c.state = stDone
	case n == 0:
		c.state = stTrailer
	default:
		c.state, c.remain = stChunkData, n
	}
}
