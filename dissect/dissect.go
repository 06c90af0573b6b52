package dissect

import "io"

// RecordTypeHandshake is the first byte of every TLS stream a client
// starts.
const RecordTypeHandshake = recordTypeHandshake

// ClientHello reads one TLS ClientHello from r and returns the server
// name it asks for ("" when it sends none) and every byte read from r.
// It is ReadClientHello with DefaultLimit, reduced to the server name.
//
// Deprecated: a tunnel gate needs more than the name (whether the hello
// carries ECH, and, after a HelloRetryRequest, the second hello); use
// Sniff, ReadClientHello, ReadServerHello and ReadSecondClientHello.
func ClientHello(r io.Reader) (serverName string, consumed []byte, err error) {
	h, consumed, err := ReadClientHello(r, DefaultLimit)
	return h.ServerName, consumed, err
}
