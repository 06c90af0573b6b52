package dissect

import (
	"errors"
	"fmt"
	"io"
)

// DefaultLimit is the limit the TLS readers use when the caller passes
// none: room for any ClientHello a real client sends (crypto/tls refuses
// handshake messages over 64 KiB) with its record headers.
const DefaultLimit = 64<<10 + 64

const (
	recordHeaderLen = 5
	// maxPlaintext is the longest plaintext record RFC 8446 §5.1 allows.
	// Hellos are plaintext, and crypto/tls refuses longer ones, so a
	// longer record can only be one no Go peer would read.
	maxPlaintext = 1 << 14

	recordTypeChangeCipherSpec = 20
	recordTypeAlert            = 21
	recordTypeHandshake        = 22
	recordTypeApplicationData  = 23
	recordTypeHeartbeat        = 24

	typeClientHello = 1
	typeServerHello = 2

	handshakeHeaderLen = 4
)

// recordReader reads TLS records from r one header at a time, so it
// never reads past the record it needs, and keeps every byte it read.
type recordReader struct {
	r     io.Reader
	limit int
	buf   []byte // every byte read from r, in order
}

type record struct {
	typ  uint8
	vers uint16
	body []byte
}

func newRecordReader(r io.Reader, limit int) *recordReader {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &recordReader{r: r, limit: limit, buf: make([]byte, 0, 2048)}
}

// next reads one record: its 5-byte header, which it checks before
// reading on, then exactly the body the header announces.
func (rr *recordReader) next() (record, error) {
	start := len(rr.buf)
	if start+recordHeaderLen > rr.limit {
		return record{}, refuse(ErrTooLarge, start, "%d bytes read and another record needed; limit %d", start, rr.limit)
	}
	if err := rr.fill(recordHeaderLen); err != nil {
		return record{}, err
	}
	hdr := rr.buf[start:]
	rec := record{typ: hdr[0], vers: uint16(hdr[1])<<8 | uint16(hdr[2])}
	n := int(hdr[3])<<8 | int(hdr[4])
	switch {
	case start == 0 && hdr[0]&0x80 != 0 && hdr[2] == typeClientHello:
		// SSLv2 framing: a 15-bit length with the top bit set, then
		// message type 1 (CLIENT-HELLO).
		return record{}, refuse(ErrSSLv2, len(rr.buf), "first bytes % x", hdr)
	case rec.typ < recordTypeChangeCipherSpec || rec.typ > recordTypeHeartbeat:
		return record{}, refuse(ErrNotTLS, len(rr.buf), "record type %#02x", rec.typ)
	case hdr[1] != 3:
		return record{}, refuse(ErrRecordVersion, len(rr.buf), "%s record with version %#04x", recordTypeName(rec.typ), rec.vers)
	case n == 0:
		return record{}, refuse(ErrEmptyRecord, len(rr.buf), "%s record", recordTypeName(rec.typ))
	case n > maxPlaintext:
		return record{}, refuse(ErrRecordTooLong, len(rr.buf), "%s record of %d bytes, at most %d", recordTypeName(rec.typ), n, maxPlaintext)
	case start+recordHeaderLen+n > rr.limit:
		return record{}, refuse(ErrTooLarge, len(rr.buf), "record of %d bytes after %d read; limit %d", n, start, rr.limit)
	}
	if err := rr.fill(n); err != nil {
		return record{}, err
	}
	rec.body = rr.buf[start+recordHeaderLen:]
	return rec, nil
}

// fill reads exactly n more bytes onto rr.buf, keeping what a short read
// delivered when the stream ends or fails.
func (rr *recordReader) fill(n int) error {
	start := len(rr.buf)
	rr.buf = append(rr.buf, make([]byte, n)...)
	got, err := io.ReadFull(rr.r, rr.buf[start:])
	rr.buf = rr.buf[:start+got]
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		cause := io.ErrUnexpectedEOF
		if len(rr.buf) == 0 {
			cause = io.EOF
		}
		g := refuse(ErrTruncated, len(rr.buf), "after %d bytes", len(rr.buf))
		g.cause = cause
		return g
	default:
		return fmt.Errorf("dissect: reading TLS record after %d bytes: %w", len(rr.buf), err)
	}
}

// message reads records until the first handshake message, which starts
// in rec (a handshake record), is complete. It returns the message and
// how many bytes of the last record follow it. Fragments may be split
// anywhere, but only handshake records may carry them.
func (rr *recordReader) message(want uint8, rec record) (msg []byte, trailing int, err error) {
	var hs []byte
	for {
		hs = append(hs, rec.body...)
		if hs[0] != want {
			return nil, 0, refuse(ErrUnexpectedMessage, len(rr.buf), "%s first, want %s", handshakeTypeName(hs[0]), handshakeTypeName(want))
		}
		if len(hs) >= handshakeHeaderLen {
			n := handshakeHeaderLen + (int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3]))
			if recordHeaderLen+n > rr.limit {
				return nil, 0, refuse(ErrTooLarge, len(rr.buf), "%s of %d bytes; limit %d", handshakeTypeName(want), n, rr.limit)
			}
			if len(hs) >= n {
				return hs[:n], len(hs) - n, nil
			}
		}
		if rec, err = rr.next(); err != nil {
			return nil, 0, err
		}
		if rec.typ != recordTypeHandshake {
			return nil, 0, refuse(ErrInterleaved, len(rr.buf), "%s record after %d bytes of %s", recordTypeName(rec.typ), len(hs), handshakeTypeName(want))
		}
	}
}

func recordTypeName(t uint8) string {
	switch t {
	case recordTypeChangeCipherSpec:
		return "change_cipher_spec"
	case recordTypeAlert:
		return "alert"
	case recordTypeHandshake:
		return "handshake"
	case recordTypeApplicationData:
		return "application_data"
	case recordTypeHeartbeat:
		return "heartbeat"
	}
	return fmt.Sprintf("type %#02x", t)
}

func handshakeTypeName(t uint8) string {
	switch t {
	case typeClientHello:
		return "ClientHello"
	case typeServerHello:
		return "ServerHello"
	}
	return fmt.Sprintf("handshake message type %d", t)
}

// describe names a record for an error's detail; alerts say which.
func describe(rec record) string {
	if rec.typ == recordTypeAlert && len(rec.body) == 2 {
		return fmt.Sprintf("alert record (level %d, description %d)", rec.body[0], rec.body[1])
	}
	return recordTypeName(rec.typ) + " record"
}
