// Package dissect recognises protocols on a stream and reads the first
// messages a gate has to see before it lets a stream through.
//
// Sniff names the protocol from a stream's first bytes. For TLS,
// ReadClientHello reads a client's first ClientHello record by record,
// ReadServerHello the upstream's ServerHello (to learn whether it is a
// HelloRetryRequest) and ReadSecondClientHello the hello a client sends
// after one. The ClientHello is parsed by crypto/tls itself, so it is
// read the way a Go server reads it; the readers are strict about the
// records around it, refusing (with a *GateError naming the rule) what a
// lenient server would skip over or read differently.
//
// The readers fit a tunnel gate in this order: ReadClientHello on the
// client's stream; ReadServerHello on the upstream's, before any more of
// the client's bytes are relayed; and, if that says HelloRetry,
// ReadSecondClientHello on the client's stream, which then carries the
// second hello and nothing before it but an optional change_cipher_spec.
// After that the records are encrypted and there is nothing left to read.
//
// The contract: dissect reads and reports; it never decides. Every byte a
// reader reads is returned to the caller, on success and on error alike,
// and a reader never reads past the last record of the message it was
// asked for. The caller sends nothing upstream until it has checked the
// result, and then sends exactly the bytes returned, unchanged, before
// relaying the rest of the stream.
package dissect
