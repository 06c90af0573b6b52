package dissect

import (
	"io"

	"golang.org/x/crypto/cryptobyte"
)

// helloRetryRandom is the ServerHello.random that makes a ServerHello a
// HelloRetryRequest: SHA-256("HelloRetryRequest"), RFC 8446 §4.1.3.
var helloRetryRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

const extensionSupportedVersions uint16 = 43

// ServerHello is what a gate needs from a server's first message.
type ServerHello struct {
	// HelloRetry: the message is a HelloRetryRequest, so the client
	// will send a second ClientHello, which needs checking too.
	HelloRetry bool
	// Version is the version the server selected: supported_versions
	// when present, else legacy_version.
	Version     uint16
	CipherSuite uint16
	Extensions  []uint16 // extension numbers in wire order
}

// ReadServerHello reads a server's records until its first handshake
// message, which must be a ServerHello (or a HelloRetryRequest), is
// complete, and returns it with exactly the bytes read: whole records,
// which in TLS 1.2 usually carry the server's next messages too. The
// record rules are ReadClientHello's, except that more messages may
// follow the ServerHello in its last record. A server that answers with
// an alert gets ErrAlert, with the alert record in the bytes, which the
// caller can relay to the client before it closes.
func ReadServerHello(r io.Reader, limit int) (ServerHello, []byte, error) {
	rr := newRecordReader(r, limit)
	rec, err := rr.next()
	if err != nil {
		return ServerHello{}, rr.buf, err
	}
	switch rec.typ {
	case recordTypeHandshake:
	case recordTypeAlert:
		return ServerHello{}, rr.buf, refuse(ErrAlert, len(rr.buf), "%s", describe(rec))
	default:
		return ServerHello{}, rr.buf, refuse(ErrNotHandshake, len(rr.buf), "%s before the ServerHello", describe(rec))
	}
	msg, _, err := rr.message(typeServerHello, rec)
	if err != nil {
		return ServerHello{}, rr.buf, err
	}
	sh, why := parseServerHello(msg)
	if why != "" {
		return ServerHello{}, rr.buf, refuse(ErrMalformed, len(rr.buf), "ServerHello: %s", why)
	}
	return sh, rr.buf, nil
}

// parseServerHello parses one ServerHello message (RFC 8446 §4.1.3, RFC
// 5246 §7.4.1.3), header included, or says why it cannot.
func parseServerHello(msg []byte) (ServerHello, string) {
	s := cryptobyte.String(msg[handshakeHeaderLen:])
	var sh ServerHello
	var random []byte
	var sessionID cryptobyte.String
	var compression uint8
	if !s.ReadUint16(&sh.Version) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) || !s.ReadUint16(&sh.CipherSuite) ||
		!s.ReadUint8(&compression) {
		return ServerHello{}, "truncated"
	}
	if len(sessionID) > 32 {
		return ServerHello{}, "session id longer than 32 bytes"
	}
	sh.HelloRetry = [32]byte(random) == helloRetryRandom
	if s.Empty() {
		return sh, "" // TLS 1.2 and earlier may omit extensions
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return ServerHello{}, "extensions do not parse"
	}
	sh.Extensions = []uint16{}
	seen := make(map[uint16]bool)
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return ServerHello{}, "extensions do not parse"
		}
		if seen[typ] {
			return ServerHello{}, "duplicate extension"
		}
		seen[typ] = true
		sh.Extensions = append(sh.Extensions, typ)
		if typ == extensionSupportedVersions {
			if !data.ReadUint16(&sh.Version) || !data.Empty() {
				return ServerHello{}, "supported_versions does not parse"
			}
		}
	}
	return sh, ""
}
