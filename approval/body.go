package approval

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/agentg/agentg/rules"
)

// The body of an HTTP request held for approval. An approval is bound to
// the whole body: its grant key holds the body's SHA-256, so a grant
// remembered for one body never passes another. The holder reads the body
// whole before holding (which also lets net/http notice a client that
// goes away while its request waits), so a body is held only up to
// MaxBody; a larger one is refused, never held, never granted. The
// approver sees a preview: the body as text (bytes that are not UTF-8
// shown as \xNN), every redact pattern of the policy applied, cut to
// PreviewMax bytes and marked truncated when cut. A body sent with a
// Content-Encoding is shown decoded (gzip, deflate; at most MaxBody
// decoded), so that no coding hides it from its approver; one that
// cannot be decoded is refused, never held.

// Body bounds.
const (
	MaxBody    = 1 << 20 // the largest request body held for approval
	PreviewMax = 4 << 10 // the most of it an approver is shown
)

// ErrBodyTooLarge is a body, or its decoding, over MaxBody.
var ErrBodyTooLarge = fmt.Errorf("over %d bytes, the most a request held for approval may carry", MaxBody)

// DecodeBody undoes the Content-Encoding header value encoding of body
// (codings listed in the order applied, the last undone first) for the
// approver to read: gzip, x-gzip, deflate (zlib, or raw as some clients
// send it) and identity. Another coding, a body that does not decode, or
// one that decodes to more than MaxBody is an error.
func DecodeBody(body []byte, encoding string) ([]byte, error) {
	var codings []string
	for _, c := range strings.Split(encoding, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
			codings = append(codings, c)
		}
	}
	out := body
	for i := len(codings) - 1; i >= 0; i-- {
		var r io.Reader
		switch codings[i] {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(bytes.NewReader(out))
			if err != nil {
				return nil, fmt.Errorf("gzip body: %w", err)
			}
			r = zr
		case "deflate":
			if zr, err := zlib.NewReader(bytes.NewReader(out)); err == nil {
				r = zr
			} else {
				r = flate.NewReader(bytes.NewReader(out))
			}
		default:
			return nil, fmt.Errorf("Content-Encoding %q, which agentg cannot decode to show the approver", codings[i])
		}
		dec, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
		switch {
		case len(dec) > MaxBody:
			return nil, fmt.Errorf("decoded body: %w", ErrBodyTooLarge)
		case err != nil && !errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%s body: %w", codings[i], err)
		}
		out = dec
	}
	return out, nil
}

// bodyView is what an approval shows of a request body.
type bodyView struct {
	preview   string
	truncated bool
}

// viewBody makes body's preview, redacted with reds.
func viewBody(body []byte, reds []rules.Redaction) bodyView {
	var v bodyView
	if len(body) == 0 {
		return v
	}
	text := displayText(body)
	// Redacted whole, then cut: a cut cannot leave half a secret that
	// its pattern no longer matches.
	for _, r := range reds {
		if r.Pattern != nil {
			text = r.Pattern.ReplaceAllLiteralString(text, r.Marker)
		}
	}
	if len(text) > PreviewMax {
		cut := PreviewMax
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text, v.truncated = text[:cut], true
	}
	v.preview = text
	return v
}

// displayText is body as text: valid UTF-8 as it is, every other byte as
// \xNN (and a backslash that starts such an escape doubled), so the
// preview is valid UTF-8 and says which bytes it could not show.
func displayText(body []byte) string {
	if utf8.Valid(body) && !bytes.Contains(body, []byte(`\x`)) {
		return string(body)
	}
	var sb strings.Builder
	for i := 0; i < len(body); {
		r, n := utf8.DecodeRune(body[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			const hexd = "0123456789abcdef"
			sb.WriteString(`\x`)
			sb.WriteByte(hexd[body[i]>>4])
			sb.WriteByte(hexd[body[i]&15])
		case body[i] == '\\' && i+1 < len(body) && body[i+1] == 'x':
			sb.WriteString(`\\`)
		default:
			sb.Write(body[i : i+n])
		}
		i += n
	}
	return sb.String()
}
