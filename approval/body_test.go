package approval

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentg/agentg/rules"
)

func heldHTTP(body string) Request {
	return Request{Kind: "http", Agent: "a", Method: "POST", URL: "http://api.test/deploy", Body: []byte(body),
		Decision: rules.Decision{Action: rules.Approve, Rule: "r", Hold: &rules.Hold{Timeout: time.Minute, Console: true}}}
}

// A grant remembered for one body passes that body only: the approval
// binds the body's digest, not only the method and URL.
func TestGrantBindsBody(t *testing.T) {
	b := newBroker(t, StoreOptions{})
	tk := b.Begin(heldHTTP(`{"image":"web:1"}`))
	a := tk.Approval()
	if a.BodySize != 17 || a.Body != `{"image":"web:1"}` || len(a.BodySHA256) != 64 || a.BodyTruncated {
		t.Fatalf("approval shows body %q, size %d, sha256 %q, truncated %v", a.Body, a.BodySize, a.BodySHA256, a.BodyTruncated)
	}
	if _, err := b.Approve(tk.ID(), ScopeAgentTool, time.Minute, "console"); err != nil {
		t.Fatal(err)
	}
	if !tk.Wait(context.Background()).Approved {
		t.Fatal("not approved")
	}
	if again := b.Begin(heldHTTP(`{"image":"web:1"}`)); !again.Immediate() {
		t.Fatal("the same body is not passed by the grant")
	}
	for _, other := range []string{`{"image":"evil:1"}`, ``, `{"image":"web:1"} `} {
		if tk := b.Begin(heldHTTP(other)); tk.Immediate() {
			t.Errorf("the grant for one body passed body %q", other)
		}
	}
}

func TestViewBody(t *testing.T) {
	key := rules.Redaction{ID: "k", Pattern: regexp.MustCompile(`sk-[a-z0-9]{8}`), Marker: "[REDACTED:k]"}
	long := strings.Repeat("é", PreviewMax) // 2 bytes each: the cut falls inside a rune
	for _, c := range []struct {
		name, body, want string
		truncated        bool
	}{
		{"empty", "", "", false},
		{"text", "ship it", "ship it", false},
		{"redacted", "token=sk-abcd1234&x=1", "token=[REDACTED:k]&x=1", false},
		{"not utf-8", "a\xff\x00b", `a\xff` + "\x00b", false},
		{"a literal \\x is told apart", "a\\x41\xfe", `a\\x41\xfe`, false},
		{"cut at a rune", long, long[:PreviewMax], true},
		{"secret across the cut", strings.Repeat("a", PreviewMax-4) + "sk-abcd1234", strings.Repeat("a", PreviewMax-4) + "[RED", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := viewBody([]byte(c.body), []rules.Redaction{key})
			if v.preview != c.want || v.truncated != c.truncated {
				t.Fatalf("preview %q truncated %v, want %q %v", v.preview, v.truncated, c.want, c.truncated)
			}
		})
	}
}

// The preview is valid UTF-8, at most PreviewMax bytes, never shows what
// a redact pattern matches in the body, and is the body itself when the
// body is short, valid text with nothing to redact or escape; decoding
// never panics nor passes MaxBody.
func FuzzViewBody(f *testing.F) {
	for _, s := range []string{"", "ship it", "sk-abcd1234", "a\xffb", `\x41`, strings.Repeat("ü", 3000)} {
		f.Add([]byte(s))
	}
	key := rules.Redaction{ID: "k", Pattern: regexp.MustCompile(`sk-[a-z0-9]{8}`), Marker: "[REDACTED:k]"}
	f.Fuzz(func(t *testing.T, body []byte) {
		v := viewBody(body, []rules.Redaction{key})
		if !utf8.ValidString(v.preview) || len(v.preview) > PreviewMax {
			t.Fatalf("preview %q (%d bytes)", v.preview, len(v.preview))
		}
		if key.Pattern.MatchString(v.preview) {
			t.Fatalf("preview shows a secret: %q", v.preview)
		}
		for _, enc := range []string{"gzip", "deflate"} {
			if dec, err := DecodeBody(body, enc); err == nil && len(dec) > MaxBody {
				t.Fatalf("%s decoded to %d bytes", enc, len(dec))
			}
		}
		if !v.truncated && utf8.Valid(body) && !strings.Contains(string(body), `\x`) && !key.Pattern.Match(body) && v.preview != string(body) {
			t.Fatalf("preview %q of plain body %q", v.preview, body)
		}
	})
}

func TestDecodeBody(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	zl := func(b []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	raw := func(b []byte) []byte {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	plain := []byte(`{"image":"web:1"}`)
	bomb := gz(bytes.Repeat([]byte{'a'}, MaxBody+1))
	for _, c := range []struct {
		name, enc string
		body      []byte
		want      []byte
		err       bool
		tooLarge  bool
	}{
		{"identity", "identity", plain, plain, false, false},
		{"gzip", "gzip", gz(plain), plain, false, false},
		{"x-gzip upper case", " X-GZIP ", gz(plain), plain, false, false},
		{"deflate zlib", "deflate", zl(plain), plain, false, false},
		{"deflate raw", "deflate", raw(plain), plain, false, false},
		{"two codings, last undone first", "deflate, gzip", gz(zl(plain)), plain, false, false},
		{"unknown coding", "br", plain, nil, true, false},
		{"corrupt gzip", "gzip", []byte("not gzip at all"), nil, true, false},
		{"decodes past the bound", "gzip", bomb, nil, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeBody(c.body, c.enc)
			if (err != nil) != c.err || c.tooLarge != errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("error %v, want error %v (too large %v)", err, c.err, c.tooLarge)
			}
			if !c.err && !bytes.Equal(got, c.want) {
				t.Fatalf("decoded %q, want %q", got, c.want)
			}
		})
	}
}

// A body sent with a Content-Encoding is shown decoded; the digest and
// the size stay the body's as sent, which the grant binds.
func TestBeginShowsDecodedBody(t *testing.T) {
	b := newBroker(t, StoreOptions{})
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte("ship web:1"))
	w.Close()
	q := heldHTTP(buf.String())
	q.BodyEncoding = "gzip"
	q.Decoded = []byte("ship web:1")
	a := b.Begin(q).Approval()
	if a.Body != "ship web:1" || a.BodyEncoding != "gzip" || a.BodySize != int64(buf.Len()) {
		t.Fatalf("approval shows %q (encoding %q, size %d)", a.Body, a.BodyEncoding, a.BodySize)
	}
}
