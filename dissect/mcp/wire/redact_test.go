package wire

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

var awsKeys = Redaction{ID: "aws-keys", Pattern: regexp.MustCompile(`AKIA[0-9A-Z]{16}`)}

func TestRedactArguments(t *testing.T) {
	rules := []Redaction{awsKeys, {ID: "pw", Pattern: regexp.MustCompile(`hunter2`)}, {ID: "card", Pattern: regexp.MustCompile(`4[0-9]{15}`)}}
	for _, tc := range []struct {
		name, in, want string
		fired          []string
	}{
		{"nothing matches", `{"a": "b", "n": 1}`, `{"a": "b", "n": 1}`, nil},
		{"nested, names too", `{"AKIAABCDEFGHIJKLMNOP": {"k": ["x AKIAABCDEFGHIJKLMNOP y", 1, true]}, "z" : "hunter2"}`,
			`{"[REDACTED:aws-keys]": {"k": ["x [REDACTED:aws-keys] y", 1, true]}, "z" : "[REDACTED:pw]"}`, []string{"aws-keys", "pw"}},
		{"escaped name", `{"\u0041KIAABCDEFGHIJKLMNOP x":1}`, `{"[REDACTED:aws-keys] x":1}`, []string{"aws-keys"}},
		{"escaped input, escaped output", `{"s":"\"AKIA\u0041BCDEFGHIJKLMNOP\"\n\t<>"}`, `{"s":"\"[REDACTED:aws-keys]\"\n\t<>"}`, []string{"aws-keys"}},
		{"every match", `{"s":"AKIAABCDEFGHIJKLMNOPAKIAABCDEFGHIJKLMNOP hunter2"}`, `{"s":"[REDACTED:aws-keys][REDACTED:aws-keys] [REDACTED:pw]"}`, []string{"aws-keys", "pw"}},
		{"non-ASCII around a match", `{"s":"é AKIAABCDEFGHIJKLMNOP ü"}`, `{"s":"é [REDACTED:aws-keys] ü"}`, []string{"aws-keys"}},
		{"a top-level string", `"hunter2"`, `"[REDACTED:pw]"`, []string{"pw"}},
		{"a number, as written", `{"pin":4111111111111111,"n":41.5,"m":-7}`, `{"pin":"[REDACTED:card]","n":41.5,"m":-7}`, []string{"card"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, fired, err := Redact(jsontext.Value(tc.in), rules)
			if err != nil || string(got) != tc.want || !reflect.DeepEqual(fired, tc.fired) {
				t.Errorf("got %s %v %v\nwant %s %v", got, fired, err, tc.want, tc.fired)
			}
		})
	}
}

// Every string and name of a result is redacted, not a list of fields:
// the leak paths (image data, a resource_link's uri and name,
// _meta, an embedded resource's uri and blob) included.
func TestRedactResults(t *testing.T) {
	in := `{"content":[{"type":"text","text":"k AKIAABCDEFGHIJKLMNOP"},{"type":"image","data":"AKIAABCDEFGHIJKLMNOP","mimeType":"image/png"},` +
		`{"type":"resource","resource":{"uri":"file:///AKIAABCDEFGHIJKLMNOP","text":"AKIAABCDEFGHIJKLMNOP","blob":"AKIAABCDEFGHIJKLMNOP"}},` +
		`{"type":"resource_link","uri":"x:AKIAABCDEFGHIJKLMNOP","name":"AKIAABCDEFGHIJKLMNOP","description":"AKIAABCDEFGHIJKLMNOP"},{"Type":"text","Text":"AKIAABCDEFGHIJKLMNOP"}],` +
		`"structuredContent":{"k":["AKIAABCDEFGHIJKLMNOP",{"AKIAABCDEFGHIJKLMNOP":"AKIAABCDEFGHIJKLMNOP"}]},` +
		`"contents":[{"uri":"file:///a","text":"AKIAABCDEFGHIJKLMNOP"}],` +
		`"_meta":{"k":"AKIAABCDEFGHIJKLMNOP"},"isError":false,"resultType":"complete"}`
	want := strings.ReplaceAll(in, "AKIAABCDEFGHIJKLMNOP", "[REDACTED:aws-keys]")
	got, fired, err := Redact(jsontext.Value(in), []Redaction{awsKeys})
	if err != nil || string(got) != want || !reflect.DeepEqual(fired, []string{"aws-keys"}) {
		t.Errorf("got  %s %v %v\nwant %s", got, fired, err, want)
	}
}

// RedactMessage rewrites every string and name of a message but its
// envelope, and refuses what it cannot rewrite without changing the
// message.
func TestRedactMessage(t *testing.T) {
	const k = "AKIAABCDEFGHIJKLMNOP"
	const mark = "[REDACTED:aws-keys]"
	for _, tc := range []struct {
		name, in string
		want     string // "" : Unredactable
		field    string
	}{
		{"request: arguments, their names, _meta", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"` + k + `":"` + k + `"},"_meta":{"x":"` + k + `"}}}`,
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"` + mark + `":"` + mark + `"},"_meta":{"x":"` + mark + `"}}}`, ""},
		{"prompts/get arguments", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"` + k + `"}}}`,
			`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"` + mark + `"}}}`, ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":{"m":"` + k + `"}}}`,
			`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":{"m":"` + mark + `"}}}`, ""},
		{"error message and data", `{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"` + k + `","data":["` + k + `"]}}`,
			`{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"` + mark + `","data":["` + mark + `"]}}`, ""},
		{"a response's id is left alone", `{"jsonrpc":"2.0","id":"` + k + `","result":{"t":"` + k + `"}}`,
			`{"jsonrpc":"2.0","id":"` + k + `","result":{"t":"` + mark + `"}}`, ""},
		{"request id", `{"jsonrpc":"2.0","id":"` + k + `","method":"ping"}`, "", "id"},
		{"numeric request id", `{"jsonrpc":"2.0","id":12345678901234,"method":"ping"}`, "", "id"},
		{"method", `{"jsonrpc":"2.0","method":"notifications/` + k + `"}`, "", "method"},
		{"tool name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + k + `","arguments":{}}}`, "", "params.name"},
		{"resource uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///` + k + `"}}`, "", "params.uri"},
		{"names equal once redacted", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a` + k + `":1,"a[REDACTED:aws-keys]":2}}`, "", "member names, equal once redacted,"},
		{"two secrets, one marker", `{"jsonrpc":"2.0","method":"x","params":{"` + k + `":1,"AKIAABCDEFGHIJKLMNOQ":2}}`, "", "member names, equal once redacted,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, []byte(tc.in))
			digits := Redaction{ID: "digits", Pattern: regexp.MustCompile(`[0-9]{14}`)}
			got, fired, err := RedactMessage(m, []Redaction{awsKeys, digits})
			if tc.want == "" {
				var u *Unredactable
				if !errors.As(err, &u) || u.Field != tc.field {
					t.Fatalf("got %s %v, want an Unredactable in %s", got, err, tc.field)
				}
				if strings.Contains(err.Error(), k) {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil || string(got) != tc.want || !reflect.DeepEqual(fired, []string{"aws-keys"}) {
				t.Fatalf("got  %s %v %v\nwant %s", got, fired, err, tc.want)
			}
			if n := mustParse(t, got); n.IDKey() != m.IDKey() || n.Method != m.Method || n.Kind != m.Kind {
				t.Errorf("redaction changed the envelope: %s", got)
			}
		})
	}
	m := mustParse(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if got, fired, err := RedactMessage(m, []Redaction{awsKeys}); &got[0] != &m.Raw[0] || fired != nil || err != nil {
		t.Error("no match should return the message itself")
	}
}

// Results from the SDK's server and the specification's examples keep
// every byte but the redacted strings.
func TestRedactRealResults(t *testing.T) {
	_, fromServer := sdkTranscript(t, "2026-07-28")
	for _, sub := range []string{`"structuredContent"`, `"contents"`} {
		m := mustParse(t, find(fromServer, sub))
		got, fired, err := Redact(m.Result, []Redaction{awsKeys})
		if err != nil || len(fired) != 1 || bytes.Contains(got, []byte("AKIAABCDEFGHIJKLMNOP")) {
			t.Errorf("%s: %s %v %v", sub, got, fired, err)
		}
		// A rewritten string is encoded anew, minimally: the SDK's \u003c
		// for < (in the very strings that held the key) becomes <.
		want := strings.NewReplacer("AKIAABCDEFGHIJKLMNOP", "[REDACTED:aws-keys]", `\u003c`, "<", `\u003e`, ">").Replace(string(m.Result))
		if string(got) != want {
			t.Errorf("%s: got %s\nwant %s", sub, got, want)
		}
		if msg, ok := m.WithResult(got); !ok || mustParse(t, msg).IDKey() != m.IDKey() {
			t.Errorf("%s: %s", sub, msg)
		}
	}
	b, err := os.ReadFile("testdata/spec/examples-2026-07-28/CallToolResult/result-with-structured-content.json")
	if err != nil {
		t.Fatal(err)
	}
	got, fired, err := Redact(b, []Redaction{{ID: "weather", Pattern: regexp.MustCompile(`Partly cloudy`)}})
	want := strings.ReplaceAll(string(b), "Partly cloudy", "[REDACTED:weather]")
	if err != nil || string(got) != want || len(fired) != 1 {
		t.Errorf("got %s %v %v\nwant %s", got, fired, err, want)
	}
}

func TestRedactRules(t *testing.T) {
	rules := []Redaction{
		{ID: "a", Pattern: regexp.MustCompile(`abc`)},
		{ID: "b", Pattern: regexp.MustCompile(`bcd`)},
		{ID: "empty", Pattern: regexp.MustCompile(`x*`)},
		{ID: "a", Pattern: regexp.MustCompile(`zz`)},
		{ID: "R", Pattern: regexp.MustCompile(`RED`)}, // would match a marker
	}
	got, fired, err := Redact(jsontext.Value(`["abcde", "zz", "RED abc"]`), rules)
	if want := `["[REDACTED:a]e", "[REDACTED:a]", "[REDACTED:R] [REDACTED:a]"]`; err != nil || string(got) != want {
		t.Errorf("got %s %v, want %s", got, err, want)
	}
	if want := []string{"a", "b", "R"}; !reflect.DeepEqual(fired, want) {
		t.Errorf("fired %v, want %v", fired, want)
	}
	in := jsontext.Value(`{"a":"b"}`)
	if got, fired, err := Redact(in, nil); &got[0] != &in[0] || fired != nil || err != nil {
		t.Error("no rules should return the value itself")
	}
	if got, _, err := Redact(in, rules); &got[0] != &in[0] || err != nil {
		t.Error("no match should return the value itself")
	}
	for _, bad := range []string{`{"a":"b","a":"c"}`, `{"a":`, "[\"\xff\"]", `{"a":1} x`} {
		var pe *ParseError
		if _, _, err := Redact(jsontext.Value(bad), rules); !errors.As(err, &pe) {
			t.Errorf("Redact(%q) = %v, want a *ParseError", bad, err)
		}
	}
}

func BenchmarkRedactResult(b *testing.B) {
	result := jsontext.Value(`{"content":[{"type":"text","text":"` + strings.Repeat("lorem ipsum dolor sit amet ", 36) + `"}],"structuredContent":{"rows":[{"id":"1","note":"AKIAABCDEFGHIJKLMNOP"}]},"isError":false}`)
	b.SetBytes(int64(len(result)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Redact(result, []Redaction{awsKeys}); err != nil {
			b.Fatal(err)
		}
	}
}

// The cost every message pays once a policy has redactions: a walk of the
// whole message, nothing matched.
func BenchmarkRedactMessage(b *testing.B) {
	raw := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` + strings.Repeat("lorem ipsum dolor sit amet ", 36) + `"}],"structuredContent":{"rows":[{"id":"1","note":"n"}]},"isError":false,"_meta":{"k":"v"}}}`)
	m := mustParse(b, raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := RedactMessage(m, []Redaction{awsKeys}); err != nil {
			b.Fatal(err)
		}
	}
}
