package wire

import (
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Reading a body the way the server will: the bytes after its
// Content-Encoding is undone, bounded by max_message, under a content type
// the server would parse as JSON. What cannot be read so is refused, never
// passed unread.

// errTooLarge is a body over max_message.
var ErrTooLarge = errors.New("message larger than max_message")

// readBody reads r's body, decoded, up to limit bytes. It returns the
// decoded bytes; the caller forwards them without the Content-Encoding.
func ReadBody(body io.Reader, encoding string, limit int64) ([]byte, error) {
	var r io.Reader = body
	for _, enc := range encodings(encoding) {
		switch enc {
		case "identity":
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(r)
			if err != nil {
				return nil, fmt.Errorf("gzip body: %w", err)
			}
			r = zr
		case "deflate":
			// RFC 9110's deflate is zlib; some clients send raw deflate.
			br := newPeekReader(r)
			if zlibHeader(br.peek(2)) {
				zr, err := zlib.NewReader(br)
				if err != nil {
					return nil, fmt.Errorf("deflate body: %w", err)
				}
				r = zr
			} else {
				r = flate.NewReader(br)
			}
		default:
			return nil, fmt.Errorf("Content-Encoding %q, which agentg cannot decode to read the message", enc)
		}
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// encodings lists the codings applied to a body, in the order to undo
// them (the last applied first).
func encodings(h string) []string {
	var out []string
	for _, e := range strings.Split(h, ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			out = append([]string{e}, out...)
		}
	}
	return out
}

// contentKind is how a body's media type would be read.
type ContentKind uint8

const (
	ContentJSON  ContentKind = iota // application/json or +json: MCP's
	contentEmpty                    // no Content-Type at all
	contentOther                    // anything else
)

type peekReader struct {
	r   io.Reader
	buf []byte
}

func newPeekReader(r io.Reader) *peekReader { return &peekReader{r: r} }

func (p *peekReader) peek(n int) []byte {
	for len(p.buf) < n {
		b := make([]byte, n-len(p.buf))
		k, err := p.r.Read(b)
		p.buf = append(p.buf, b[:k]...)
		if err != nil {
			break
		}
	}
	return p.buf
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}

func zlibHeader(b []byte) bool {
	return len(b) == 2 && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}
