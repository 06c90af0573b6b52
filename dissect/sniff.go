package dissect

// Protocol is what a stream's first bytes say it speaks.
type Protocol uint8

const (
	// NeedMore: the bytes so far do not decide; call Sniff again with
	// more. Sniff never says NeedMore for SniffLen bytes or more; what to
	// do with a stream that stops (or stalls) earlier is the caller's
	// decision.
	NeedMore Protocol = iota
	// TLS: the stream starts with a TLS record type. It is TLS from then
	// on and must pass the strict readers (ReadClientHello), whatever the
	// bytes after the first one: a stream a TLS server would read as TLS
	// must never fall back to being relayed opaque.
	TLS
	// HTTP1: the stream starts the way an HTTP/1 server would read a
	// request line; the caller's HTTP/1 reader decides whether it is one.
	HTTP1
	// Unknown: neither; the caller may relay it opaque.
	Unknown
)

// SniffLen is the most bytes Sniff needs to decide.
const SniffLen = 24

func (p Protocol) String() string {
	switch p {
	case NeedMore:
		return "need-more"
	case TLS:
		return "tls"
	case HTTP1:
		return "http1"
	case Unknown:
		return "unknown"
	}
	return "protocol(?)"
}

// Sniff names the protocol a stream starting with first speaks. It reads
// nothing and keeps nothing; a decision, once made, does not change as
// more bytes arrive.
//
// Where a lenient server could read a stream as TLS or HTTP/1, Sniff says
// so, so that the stream meets that protocol's strict reader rather than
// passing opaque:
//   - TLS: the first byte is a TLS record type (20 to 24), or the stream
//     starts like an SSLv2-framed ClientHello (top bit of the first byte
//     set, third byte 1), which ReadClientHello refuses.
//   - HTTP1: a method token (RFC 9110 tchars) followed by whitespace a
//     server may take for the SP after it (SP, HTAB, VT, FF or a bare
//     CR, RFC 9112 §3); or leading whitespace or an empty line, which
//     servers may skip before a request line (RFC 9112 §2.2); or a token
//     that runs on for all SniffLen bytes, since a server may accept any
//     method, however long. The HTTP/2 preface ("PRI * HTTP/2.0") is
//     HTTP1 too: it starts like a request line.
func Sniff(first []byte) Protocol {
	if len(first) == 0 {
		return NeedMore
	}
	if len(first) > SniffLen {
		first = first[:SniffLen] // so the answer cannot change later
	}
	b := first[0]
	switch {
	case b >= recordTypeChangeCipherSpec && b <= recordTypeHeartbeat:
		return TLS
	case b&0x80 != 0:
		if len(first) < 3 {
			return NeedMore
		}
		if first[2] == typeClientHello {
			return TLS
		}
		return Unknown
	case isHTTPSpace(b) || b == '\n':
		return HTTP1
	}
	for i, c := range first {
		if isTchar(c) {
			continue
		}
		switch {
		case i == 0:
			return Unknown
		case c == '\r':
			// A bare CR separates like SP; CRLF ends a line that held
			// only a token, which is no request line.
			if i+1 == len(first) {
				if len(first) == SniffLen {
					return HTTP1 // out of bytes to look at: fail closed
				}
				return NeedMore
			}
			if first[i+1] == '\n' {
				return Unknown
			}
			return HTTP1
		case isHTTPSpace(c):
			return HTTP1
		}
		return Unknown
	}
	if len(first) >= SniffLen {
		return HTTP1
	}
	return NeedMore
}

// isHTTPSpace reports the whitespace RFC 9112 §3 lets a recipient treat
// as the SP of a request line (a bare CR aside, which needs context).
func isHTTPSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'
}

// isTchar reports an RFC 9110 §5.6.2 token character.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
