package dissect

import (
	"errors"
	"fmt"
)

// The rules a TLS reader enforces. A refusal is a *GateError whose Err is
// one of these, so a caller can name the rule that fired with errors.Is
// and log the detail. Errors that are not *GateError are I/O errors from
// the reader the bytes came from (a deadline, a reset): the stream was
// cut short, not found wanting.
var (
	// ErrNotTLS: the first byte is no TLS record type at all.
	ErrNotTLS = errors.New("not a TLS record")
	// ErrSSLv2: an SSLv2-style (or SSLv2-compatible) ClientHello, which
	// no current TLS stack should send and which hides its fields from
	// a TLS record reader.
	ErrSSLv2 = errors.New("SSLv2-style hello")
	// ErrNotHandshake: a record that may not come where it came: an
	// alert, change_cipher_spec, application_data or heartbeat record
	// before the hello, or a second change_cipher_spec after a
	// HelloRetryRequest. Go servers drop a warning alert before the
	// ClientHello and read on, so letting one through would let the
	// hello behind it pass unread.
	ErrNotHandshake = errors.New("record is not a handshake record")
	// ErrInterleaved: a record of another type between the fragments of
	// one handshake message (RFC 8446 §5.1 forbids it).
	ErrInterleaved = errors.New("record interleaved with a fragmented handshake message")
	// ErrUnexpectedMessage: the first handshake message is not the one
	// expected (ClientHello from a client, ServerHello from a server).
	ErrUnexpectedMessage = errors.New("unexpected handshake message")
	// ErrEmptyRecord: a zero-length handshake record (RFC 8446 §5.1).
	ErrEmptyRecord = errors.New("zero-length record")
	// ErrRecordTooLong: a plaintext record longer than 2^14 bytes
	// (RFC 8446 §5.1; crypto/tls refuses them too).
	ErrRecordTooLong = errors.New("record too long")
	// ErrRecordVersion: a record whose legacy version is not 3.x.
	ErrRecordVersion = errors.New("record version is not 3.x")
	// ErrTrailingData: bytes after the ClientHello in the record that
	// completes it, such as a second handshake message piggy-backed on
	// the hello, which the reader would hand upstream unread.
	ErrTrailingData = errors.New("bytes after the ClientHello in its record")
	// ErrTooLarge: the hello needs more bytes than the caller's limit.
	ErrTooLarge = errors.New("hello larger than the limit")
	// ErrMalformed: the handshake message does not parse (for a
	// ClientHello: crypto/tls would not read it, or its server_name is
	// not the one unambiguous host_name servers agree on).
	ErrMalformed = errors.New("malformed handshake message")
	// ErrBadCCS: the change_cipher_spec record a client may send after a
	// HelloRetryRequest is not the one byte 0x01.
	ErrBadCCS = errors.New("malformed change_cipher_spec record")
	// ErrTruncated: the stream ended before the hello was complete.
	ErrTruncated = errors.New("stream ended inside the hello")
	// ErrAlert: the server answered with an alert record instead of a
	// ServerHello. It is not an attack worth hiding: the caller can relay
	// the bytes read to the client and close.
	ErrAlert = errors.New("server sent an alert")
)

// GateError is a refusal: the bytes read break the rule Err names.
type GateError struct {
	Err    error  // one of the Err* sentinels of this package
	Detail string // what was seen, for the log line
	Offset int    // bytes read from the stream when the rule fired
	cause  error  // an underlying error, such as io.ErrUnexpectedEOF
}

func (e *GateError) Error() string {
	if e.Detail == "" {
		return "dissect: TLS: " + e.Err.Error()
	}
	return "dissect: TLS: " + e.Err.Error() + ": " + e.Detail
}

// Unwrap lets errors.Is find both the rule and any underlying cause.
func (e *GateError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

func refuse(rule error, offset int, format string, args ...any) *GateError {
	return &GateError{Err: rule, Offset: offset, Detail: fmt.Sprintf(format, args...)}
}
