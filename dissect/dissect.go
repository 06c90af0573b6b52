// Package dissect recognises protocols on a stream. This file knows the TLS
// ClientHello: enough to read the server name a client asks for before any
// byte reaches the upstream, so that a tunnel's CONNECT host and its SNI
// can be made to agree.
//
// The contract: dissect reads and reports; it never decides. Every byte it
// reads is handed back to the caller, who must send it on unchanged.
package dissect

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// RecordTypeHandshake is the first byte of every TLS stream a client
// starts.
const RecordTypeHandshake = 0x16

// errCaptured stops the handshake once the ClientHello has been read.
var errCaptured = errors.New("dissect: ClientHello captured")

// ClientHello reads one TLS ClientHello from r and returns the server
// name it asks for ("" when it sends none) and every byte read from r,
// which may run past the ClientHello. A stream that is not a well-formed
// ClientHello is an error; the bytes read so far are still returned.
//
// Parsing is crypto/tls's own, so agentg reads the hello the way a Go
// server would, not with a parser of its own.
func ClientHello(r io.Reader) (serverName string, consumed []byte, err error) {
	var buf bytes.Buffer
	var hello *tls.ClientHelloInfo
	conn := &readOnlyConn{r: io.TeeReader(r, &buf)}
	herr := tls.Server(conn, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			hello = h
			return nil, errCaptured
		},
	}).Handshake()
	if hello == nil {
		if herr == nil {
			herr = errors.New("no ClientHello")
		}
		return "", buf.Bytes(), fmt.Errorf("read TLS ClientHello: %w", herr)
	}
	return hello.ServerName, buf.Bytes(), nil
}

// readOnlyConn is the net.Conn crypto/tls reads the hello from. Writes
// (the alert crypto/tls sends when the handshake is stopped) go nowhere:
// the real client must never see them.
type readOnlyConn struct{ r io.Reader }

func (c *readOnlyConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *readOnlyConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c *readOnlyConn) Close() error                       { return nil }
func (c *readOnlyConn) LocalAddr() net.Addr                { return nil }
func (c *readOnlyConn) RemoteAddr() net.Addr               { return nil }
func (c *readOnlyConn) SetDeadline(t time.Time) error      { return nil }
func (c *readOnlyConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *readOnlyConn) SetWriteDeadline(t time.Time) error { return nil }
