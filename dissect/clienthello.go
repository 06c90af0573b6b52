package dissect

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Extension numbers Hello reports on.
const (
	// ExtensionECH is encrypted_client_hello. A client using ECH sends
	// it in the outer hello, whose server_name is only the ECH public
	// name; the name it means is encrypted. Clients that do not use ECH
	// may send a GREASE one (browsers do), which is meant to be
	// indistinguishable (draft-ietf-tls-esni §6.2): Hello.ECH means the
	// name may be hidden, not that it is.
	ExtensionECH uint16 = 0xfe0d
	// ExtensionECHOuterExtensions is ech_outer_extensions, which belongs
	// only inside an encrypted inner hello.
	ExtensionECHOuterExtensions uint16 = 0xfd00

	extensionServerName uint16 = 0
)

// Hello is a ClientHello as crypto/tls's server reads it.
type Hello struct {
	ServerName         string   // SNI host_name; "" when the client sends none
	ECH                bool     // encrypted_client_hello (0xfe0d) present
	ECHOuterExtensions bool     // ech_outer_extensions (0xfd00) present
	ALPN               []string // application protocols offered, in order
	Versions           []uint16 // TLS versions offered (supported_versions, or those up to legacy_version)
	CipherSuites       []uint16 // as offered, GREASE included
	Extensions         []uint16 // extension numbers in wire order, GREASE included
}

// ReadClientHello reads the TLS records that carry a client's first
// handshake message, which must be a ClientHello, and returns it parsed
// with exactly the bytes read: the whole records, nothing after them.
//
// It reads one 5-byte record header at a time and then exactly the body
// the header announces, so it never reads past the last record of the
// hello, and it refuses (with a *GateError) anything but handshake
// records carrying one ClientHello that ends where its last record ends:
// see the Err* rules. limit caps the bytes read (DefaultLimit if <= 0).
//
// On error the bytes read so far are returned too, so the caller knows
// what it holds; they are not a ClientHello.
func ReadClientHello(r io.Reader, limit int) (Hello, []byte, error) {
	rr := newRecordReader(r, limit)
	rec, err := rr.next()
	if err != nil {
		return Hello{}, rr.buf, err
	}
	if rec.typ != recordTypeHandshake {
		return Hello{}, rr.buf, refuse(ErrNotHandshake, len(rr.buf), "%s before the ClientHello", describe(rec))
	}
	h, err := rr.clientHello(rec, 0)
	return h, rr.buf, err
}

// ReadSecondClientHello reads a client's reply to a HelloRetryRequest:
// at most one change_cipher_spec record with the body 0x01, which RFC
// 8446 Appendix D.4 lets a client send for middlebox compatibility (Go
// does), then a ClientHello under the same rules as ReadClientHello. It
// returns all the bytes read, the change_cipher_spec record included.
func ReadSecondClientHello(r io.Reader, limit int) (Hello, []byte, error) {
	rr := newRecordReader(r, limit)
	rec, err := rr.next()
	if err != nil {
		return Hello{}, rr.buf, err
	}
	start := 0
	if rec.typ == recordTypeChangeCipherSpec {
		if len(rec.body) != 1 || rec.body[0] != 1 {
			return Hello{}, rr.buf, refuse(ErrBadCCS, len(rr.buf), "body % x", rec.body)
		}
		start = len(rr.buf)
		if rec, err = rr.next(); err != nil {
			return Hello{}, rr.buf, err
		}
	}
	if rec.typ != recordTypeHandshake {
		return Hello{}, rr.buf, refuse(ErrNotHandshake, len(rr.buf), "%s before the second ClientHello", describe(rec))
	}
	h, err := rr.clientHello(rec, start)
	return h, rr.buf, err
}

// clientHello completes the ClientHello that starts in rec, whose record
// begins at rr.buf[start], and parses it.
func (rr *recordReader) clientHello(rec record, start int) (Hello, error) {
	msg, trailing, err := rr.message(typeClientHello, rec)
	if err != nil {
		return Hello{}, err
	}
	if trailing > 0 {
		// A second handshake message (or a fragment of one) rides in the
		// hello's last record; the upstream would read it, nobody else.
		return Hello{}, refuse(ErrTrailingData, len(rr.buf), "%d bytes", trailing)
	}
	info, err := goReadsClientHello(rr.buf[start:])
	if err != nil {
		g := refuse(ErrMalformed, len(rr.buf), "crypto/tls: %v", err)
		g.cause = err
		return Hello{}, g
	}
	if err := checkServerName(msg); err != nil {
		return Hello{}, refuse(ErrMalformed, len(rr.buf), "server_name: %v", err)
	}
	return Hello{
		ServerName:         info.ServerName,
		ECH:                slices.Contains(info.Extensions, ExtensionECH),
		ECHOuterExtensions: slices.Contains(info.Extensions, ExtensionECHOuterExtensions),
		ALPN:               info.SupportedProtos,
		Versions:           info.SupportedVersions,
		CipherSuites:       info.CipherSuites,
		Extensions:         info.Extensions,
	}, nil
}

// errCaptured stops crypto/tls once it has read the ClientHello.
var errCaptured = errors.New("dissect: ClientHello captured")

// goReadsClientHello runs crypto/tls's server over records, which hold
// one ClientHello, and returns the hello as it read it, so agentg reads
// the hello the way a Go server would rather than with a parser of its
// own.
func goReadsClientHello(records []byte) (*tls.ClientHelloInfo, error) {
	var info *tls.ClientHelloInfo
	err := tls.Server(&readOnlyConn{r: bytes.NewReader(records)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			info = h
			return nil, errCaptured
		},
	}).Handshake()
	if info == nil {
		if err == nil {
			err = errors.New("no ClientHello")
		}
		return nil, err
	}
	return info, nil
}

// checkServerName insists that a server_name extension, if present,
// holds exactly one entry and that it is a host_name. crypto/tls skips
// entries of other types and reads the one host_name; OpenSSL reads only
// the first entry, whatever follows; a list on which servers could read
// different names (or none where one was meant) is refused. msg has
// already been parsed by crypto/tls, so this only looks for the shape.
func checkServerName(msg []byte) error {
	s := cryptobyte.String(msg[handshakeHeaderLen:])
	var skip, exts cryptobyte.String
	if !s.Skip(2+32) || !s.ReadUint8LengthPrefixed(&skip) ||
		!s.ReadUint16LengthPrefixed(&skip) || !s.ReadUint8LengthPrefixed(&skip) {
		return errors.New("hello does not parse")
	}
	if s.Empty() {
		return nil // no extensions
	}
	if !s.ReadUint16LengthPrefixed(&exts) {
		return errors.New("extensions do not parse")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return errors.New("extensions do not parse")
		}
		if typ != extensionServerName {
			continue
		}
		var list, name cryptobyte.String
		var nameType uint8
		if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() ||
			!list.ReadUint8(&nameType) || !list.ReadUint16LengthPrefixed(&name) {
			return errors.New("list does not parse")
		}
		if nameType != 0 {
			return errors.New("first entry is not a host_name")
		}
		if !list.Empty() {
			return errors.New("more than one entry")
		}
	}
	return nil
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
