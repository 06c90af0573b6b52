package proxy

import (
	"bufio"
	"io"
	"net"
)

// Connection wrappers the doors hand a tunnel: each gives back bytes a
// reader already took to look at them, and raw sees through them when
// they hold none, so a relay can still splice.

// bufferedConn reads what br holds, then the connection.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.br != nil && c.br.Buffered() > 0 {
		return c.br.Read(p)
	}
	return c.Conn.Read(p)
}

// rewound is a connection whose reads yield first the bytes a reader
// already took from it to look at them.
type rewound struct {
	net.Conn
	b []byte
}

func (c *rewound) Read(p []byte) (int, error) {
	if len(c.b) > 0 {
		n := copy(p, c.b)
		c.b = c.b[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// prefixReader reads b, then r.
type prefixReader struct {
	b []byte
	r io.Reader
}

func (p *prefixReader) Read(q []byte) (int, error) {
	if len(p.b) > 0 {
		n := copy(q, p.b)
		p.b = p.b[n:]
		return n, nil
	}
	return p.r.Read(q)
}

var (
	_ net.Conn  = (*bufferedConn)(nil)
	_ net.Conn  = (*rewound)(nil)
	_ io.Reader = (*prefixReader)(nil)
)

// raw unwraps c to the TCP connection beneath when no wrapper holds bytes
// that have not been read yet, so a relay can use splice(2).
func raw(c net.Conn) (*net.TCPConn, bool) {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v, true
		case *outConn:
			return v.TCPConn, true
		case *rewound:
			if len(v.b) > 0 {
				return nil, false
			}
			c = v.Conn
		case *bufferedConn:
			if v.br != nil && v.br.Buffered() > 0 {
				return nil, false
			}
			c = v.Conn
		case *hostTracker:
			inner := v.raw()
			if inner == net.Conn(v) {
				return nil, false
			}
			c = inner
		default:
			return nil, false
		}
	}
}
