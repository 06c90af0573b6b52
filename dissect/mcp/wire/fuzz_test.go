package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// seedMessages are real messages: the specification's and the Go SDK's.
func seedMessages(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, b := range specExamples(f) {
		seeds = append(seeds, b)
	}
	c, s := sdkTranscript(f, "2026-07-28")
	c2, s2 := sdkTranscript(f, "2025-03-26")
	return append(append(append(append(append(seeds, c...), s...), c2...), s2...),
		[]byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"Command":"x"}}},{"jsonrpc":"2.0","method":"n"}]`),
		[]byte(`{"jsonrpc":"2.0","id":"\u0031","method":"tools/call","params":{"name":"a","NAME":"b"}}`))
}

// lenient is how a server built on encoding/json reads a request: struct
// fields matched case-insensitively, the last duplicate winning, invalid
// UTF-8 replaced.
type lenient struct {
	Method string `json:"method"`
	Params struct {
		Name      string         `json:"name"`
		URI       string         `json:"uri"`
		Arguments map[string]any `json:"arguments"`
	} `json:"params"`
}

func FuzzParse(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := Parse(data, Limits{})
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		for _, m := range body.Messages {
			if !jsontext.Value(m.Raw).IsValid() {
				t.Fatalf("Raw %q is not valid JSON", m.Raw)
			}
			// The id comes back byte for byte in an answer agentg writes.
			if m.ID.Kind() == '"' || m.ID.Kind() == '0' {
				back := mustParse(t, ErrorResponse(m.ID, CodeDenied, "x", nil))
				if !bytes.Equal(back.ID, m.ID) || back.IDKey() != m.IDKey() {
					t.Fatalf("id %s came back as %s", m.ID, back.ID)
				}
			}
			if m.Kind != KindRequest && m.Kind != KindNotification {
				continue
			}
			// Parse what the server will execute: a lenient decoder reads
			// the same method, tool, prompt and URI.
			var l lenient
			if err := json.Unmarshal(m.Raw, &l); err != nil {
				if m.Method == "tools/call" || m.Method == "prompts/get" || m.Method == "resources/read" {
					t.Fatalf("encoding/json cannot read an accepted %s: %v\n%s", m.Method, err, m.Raw)
				}
				continue
			}
			if l.Method != m.Method {
				t.Fatalf("encoding/json reads method %q, Parse %q\n%s", l.Method, m.Method, m.Raw)
			}
			switch m.Method {
			case "tools/call":
				if l.Params.Name != m.Tool {
					t.Fatalf("encoding/json reads tool %q, Parse %q\n%s", l.Params.Name, m.Tool, m.Raw)
				}
				for k, v := range l.Params.Arguments {
					got, ok := m.Arg("/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k))
					if !ok || (got.Kind == ValueString) != isString(v) {
						t.Fatalf("argument %q = %v, Arg reads %+v %v\n%s", k, v, got, ok, m.Raw)
					}
					if s, isStr := v.(string); isStr && s != got.Text {
						t.Fatalf("argument %q = %q, Arg reads %q", k, s, got.Text)
					}
				}
			case "prompts/get":
				if l.Params.Name != m.Prompt {
					t.Fatalf("encoding/json reads prompt %q, Parse %q", l.Params.Name, m.Prompt)
				}
			case "resources/read":
				if l.Params.URI != m.URI {
					t.Fatalf("encoding/json reads uri %q, Parse %q", l.Params.URI, m.URI)
				}
			}
			// And where the official Go SDK reads the message, it reads the
			// same method and id.
			if msg, err := jsonrpc.DecodeMessage(m.Raw); err == nil {
				req, ok := msg.(*jsonrpc.Request)
				if !ok || req.Method != m.Method || req.ID.IsValid() != (m.ID != nil) {
					t.Fatalf("the SDK reads %#v\n%s", msg, m.Raw)
				}
				if req.ID.IsValid() && IDKey(mustMarshal(t, req.ID.Raw())) != m.IDKey() {
					t.Fatalf("the SDK reads id %v, Parse %s", req.ID.Raw(), m.ID)
				}
			}
		}
	})
}

func isString(v any) bool { _, ok := v.(string); return ok }

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"\xef\xbb\xbfid: 1\r\nevent: message\r\ndata: {}\r\n\r\n: ping\r\n\r\n",
		"data: a\rdata: b\r\rretry: 10\nid\x00: x\nid: y\x00\n\n\n",
		"event: endpoint\ndata: /messages?sessionId=abc\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n",
		"data: 1\r\r\n\r\n", ":\n\n", "data", "\r\n\r",
	} {
		f.Add([]byte(s), uint16(1), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		whole, errWhole := readAll(bytes.NewReader(data), 256)
		sizes := []int{int(a%64) + 1, int(b%64) + 1}
		for range 32 {
			sizes = append(sizes, sizes[len(sizes)-2], sizes[len(sizes)-1])
		}
		split, errSplit := readAll(&chunks{b: data, sizes: sizes}, 256)
		rawWhole, rawSplit := rawOf(whole), rawOf(split)
		whole, split = withoutTail(whole), withoutTail(split)
		if (errWhole == nil) != (errSplit == nil) || len(whole) != len(split) {
			t.Fatalf("whole: %d events, %v; in reads of %v: %d events, %v", len(whole), errWhole, sizes[:2], len(split), errSplit)
		}
		for i := range whole {
			if !reflect.DeepEqual(fieldsOf(whole[i]), fieldsOf(split[i])) {
				t.Fatalf("event %d: %+v vs %+v", i, fieldsOf(whole[i]), fieldsOf(split[i]))
			}
		}
		// Every byte is returned once, in order; a stream cut short loses
		// its unfinished event (with the blank lines before it).
		if !bytes.HasPrefix(data, rawWhole) || !bytes.HasPrefix(data, rawSplit) || (errWhole == nil && (!bytes.Equal(rawWhole, data) || !bytes.Equal(rawSplit, data))) {
			t.Fatalf("Raw bytes %q / %q are not the stream %q", rawWhole, rawSplit, data)
		}
		// What WriteEvent frames reads back as the same event.
		for _, e := range whole {
			var out bytes.Buffer
			if WriteEvent(&out, e) != nil {
				continue
			}
			back, err := readAll(&out, 0)
			if err != nil || len(back) != 1 {
				t.Fatalf("%+v written as %q: %v", fieldsOf(e), out.Bytes(), err)
			}
			got, want := fieldsOf(back[0]), fieldsOf(e)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%+v read back as %+v", want, got)
			}
		}
	})
}

var marker = regexp.MustCompile(`\[REDACTED:[^\]]*\]`)

func FuzzRedact(f *testing.F) {
	_, fromServer := sdkTranscript(f, "2026-07-28")
	for _, m := range fromServer {
		if body, err := Parse(m, Limits{}); err == nil && body.Messages[0].Result != nil {
			f.Add([]byte(body.Messages[0].Result), "AKIA", true)
			f.Add([]byte(body.Messages[0].Raw), "o", false)
		}
	}
	f.Add([]byte(`{"a":["x\"y\\z\u00e9"],"k":{"content":[{"text":"xyz"}]}}`), `"y`, false)
	f.Add([]byte(`{"jsonrpc":"2.0","id":"k1","method":"tools/call","params":{"name":"t","arguments":{"k1":"k1"},"_meta":{"k1":1}}}`), "k1", true)
	f.Add([]byte(`{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"k AKIAABCDEFGHIJKLMNOP","data":{"AKIAABCDEFGHIJKLMNOP":"x"}}}`), "x", true)
	f.Fuzz(func(t *testing.T, data []byte, pat string, message bool) {
		if pat == "" || !utf8.ValidString(pat) || len(data) == 0 {
			return
		}
		rules := []Redaction{awsKeys, {ID: "lit", Pattern: regexp.MustCompile(regexp.QuoteMeta(pat))}}
		var out []byte
		var fired []string
		var err error
		var m *Message
		if message {
			b, perr := Parse(data, Limits{})
			if perr != nil || b.Batch {
				return
			}
			m = b.Messages[0]
			out, fired, err = RedactMessage(m, rules)
		} else {
			out, fired, err = Redact(data, rules)
		}
		if err != nil {
			return
		}
		if !jsontext.Value(out).IsValid() {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		if (len(fired) > 0) != !bytes.Equal(out, data) {
			t.Fatalf("fired %v but output changed: %v", fired, !bytes.Equal(out, data))
		}
		if message {
			// What is forwarded is still a message, the same one.
			b, perr := Parse(out, Limits{})
			if perr != nil {
				t.Fatalf("redacted message does not parse: %v: %s", perr, out)
			}
			if n := b.Messages[0]; n.Kind != m.Kind || n.Method != m.Method || n.IDKey() != m.IDKey() || n.Tool != m.Tool || n.URI != m.URI || n.Prompt != m.Prompt {
				t.Fatalf("redaction changed the message's envelope: %s -> %s", data, out)
			}
		}
		for _, s := range allStrings(t, out, m) {
			for _, seg := range marker.Split(s, -1) {
				for _, r := range rules {
					if r.Pattern.MatchString(seg) {
						t.Fatalf("%s still matches in %q (output %s)", r.Pattern, s, out)
					}
				}
			}
		}
	})
}

// allStrings lists every string value, member name and number of v, walked
// independently of Redact, but for the id of a response (m not nil and
// not a request), which RedactMessage leaves alone.
func allStrings(t *testing.T, v []byte, m *Message) []string {
	var out []string
	d := jsontext.NewDecoder(bytes.NewReader(v))
	skipID := m != nil && m.Kind != KindRequest
	prevID := false
	for {
		tok, err := d.ReadToken()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		kind, n := d.StackIndex(d.StackDepth())
		isName := kind == '{' && n%2 == 1
		switch tok.Kind() {
		case '"', '0': // a number's text, as written, is redacted too
			s := tok.String()
			if !(skipID && prevID && d.StackDepth() == 1) {
				out = append(out, s)
			}
			prevID = isName && s == "id"
		default:
			prevID = false
		}
	}
}
