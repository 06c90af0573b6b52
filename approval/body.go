package approval

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
// PreviewMax bytes and marked truncated when cut.

// Body bounds.
const (
	MaxBody    = 1 << 20 // the largest request body held for approval
	PreviewMax = 4 << 10 // the most of it an approver is shown
)

// bodyView is what an approval shows and binds of a request body.
type bodyView struct {
	preview   string
	truncated bool
	sha256    string
}

// viewBody digests body and makes its preview, redacted with reds.
func viewBody(body []byte, reds []rules.Redaction) bodyView {
	sum := sha256.Sum256(body)
	v := bodyView{sha256: hex.EncodeToString(sum[:])}
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
