package mcp

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
	rules := []Redaction{awsKeys, {ID: "pw", Pattern: regexp.MustCompile(`hunter2`)}}
	for _, tc := range []struct {
		name, in, want string
		fired          []string
	}{
		{"nothing matches", `{"a": "b", "n": 1}`, `{"a": "b", "n": 1}`, nil},
		{"nested, names kept", `{"AKIAABCDEFGHIJKLMNOP": {"k": ["x AKIAABCDEFGHIJKLMNOP y", 1, true]}, "z" : "hunter2"}`,
			`{"AKIAABCDEFGHIJKLMNOP": {"k": ["x [REDACTED:aws-keys] y", 1, true]}, "z" : "[REDACTED:pw]"}`, []string{"aws-keys", "pw"}},
		{"escaped input, escaped output", `{"s":"\"AKIA\u0041BCDEFGHIJKLMNOP\"\n\t<>"}`, `{"s":"\"[REDACTED:aws-keys]\"\n\t<>"}`, []string{"aws-keys"}},
		{"every match", `{"s":"AKIAABCDEFGHIJKLMNOPAKIAABCDEFGHIJKLMNOP hunter2"}`, `{"s":"[REDACTED:aws-keys][REDACTED:aws-keys] [REDACTED:pw]"}`, []string{"aws-keys", "pw"}},
		{"non-ASCII around a match", `{"s":"é AKIAABCDEFGHIJKLMNOP ü"}`, `{"s":"é [REDACTED:aws-keys] ü"}`, []string{"aws-keys"}},
		{"a top-level string", `"hunter2"`, `"[REDACTED:pw]"`, []string{"pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, fired, err := Redact(jsontext.Value(tc.in), Arguments, rules)
			if err != nil || string(got) != tc.want || !reflect.DeepEqual(fired, tc.fired) {
				t.Errorf("got %s %v %v\nwant %s %v", got, fired, err, tc.want, tc.fired)
			}
		})
	}
}

func TestRedactResults(t *testing.T) {
	in := `{"content":[{"type":"text","text":"k AKIAABCDEFGHIJKLMNOP"},{"type":"image","data":"AKIAABCDEFGHIJKLMNOP","mimeType":"image/png"},` +
		`{"type":"resource","resource":{"uri":"file:///AKIAABCDEFGHIJKLMNOP","text":"AKIAABCDEFGHIJKLMNOP","blob":"AKIAABCDEFGHIJKLMNOP"}},` +
		`{"type":"resource_link","uri":"x:AKIAABCDEFGHIJKLMNOP","name":"AKIAABCDEFGHIJKLMNOP"},{"Type":"text","Text":"AKIAABCDEFGHIJKLMNOP"}],` +
		`"structuredContent":{"k":["AKIAABCDEFGHIJKLMNOP",{"AKIAABCDEFGHIJKLMNOP":"AKIAABCDEFGHIJKLMNOP"}]},` +
		`"contents":[{"uri":"file:///a","text":"AKIAABCDEFGHIJKLMNOP"}],` +
		`"_meta":{"k":"AKIAABCDEFGHIJKLMNOP"},"isError":false,"resultType":"complete"}`
	want := `{"content":[{"type":"text","text":"k [REDACTED:aws-keys]"},{"type":"image","data":"AKIAABCDEFGHIJKLMNOP","mimeType":"image/png"},` +
		`{"type":"resource","resource":{"uri":"file:///AKIAABCDEFGHIJKLMNOP","text":"[REDACTED:aws-keys]","blob":"AKIAABCDEFGHIJKLMNOP"}},` +
		`{"type":"resource_link","uri":"x:AKIAABCDEFGHIJKLMNOP","name":"AKIAABCDEFGHIJKLMNOP"},{"Type":"text","Text":"[REDACTED:aws-keys]"}],` +
		`"structuredContent":{"k":["[REDACTED:aws-keys]",{"AKIAABCDEFGHIJKLMNOP":"[REDACTED:aws-keys]"}]},` +
		`"contents":[{"uri":"file:///a","text":"[REDACTED:aws-keys]"}],` +
		`"_meta":{"k":"AKIAABCDEFGHIJKLMNOP"},"isError":false,"resultType":"complete"}`
	got, fired, err := Redact(jsontext.Value(in), Results, []Redaction{awsKeys})
	if err != nil || string(got) != want || !reflect.DeepEqual(fired, []string{"aws-keys"}) {
		t.Errorf("got  %s %v %v\nwant %s", got, fired, err, want)
	}
	// The same value under Arguments redacts every string.
	got, _, _ = Redact(jsontext.Value(in), Arguments, []Redaction{awsKeys})
	if n := strings.Count(string(got), "AKIAABCDEFGHIJKLMNOP"); n != 1 {
		t.Errorf("Arguments scope left %d keys, want only the one in a name: %s", n, got)
	}
}

// Results from the SDK's server and the specification's examples keep
// every byte but the redacted strings.
func TestRedactRealResults(t *testing.T) {
	_, fromServer := sdkTranscript(t, "2026-07-28")
	for _, sub := range []string{`"structuredContent"`, `"contents"`} {
		m := mustParse(t, find(fromServer, sub))
		got, fired, err := Redact(m.Result, Results, []Redaction{awsKeys})
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
	got, fired, err := Redact(b, Results, []Redaction{{ID: "weather", Pattern: regexp.MustCompile(`Partly cloudy`)}})
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
	got, fired, err := Redact(jsontext.Value(`["abcde", "zz", "RED abc"]`), Arguments, rules)
	if want := `["[REDACTED:a]e", "[REDACTED:a]", "[REDACTED:R] [REDACTED:a]"]`; err != nil || string(got) != want {
		t.Errorf("got %s %v, want %s", got, err, want)
	}
	if want := []string{"a", "b", "R"}; !reflect.DeepEqual(fired, want) {
		t.Errorf("fired %v, want %v", fired, want)
	}
	in := jsontext.Value(`{"a":"b"}`)
	if got, fired, err := Redact(in, Arguments, nil); &got[0] != &in[0] || fired != nil || err != nil {
		t.Error("no rules should return the value itself")
	}
	if got, _, err := Redact(in, Arguments, rules); &got[0] != &in[0] || err != nil {
		t.Error("no match should return the value itself")
	}
	for _, bad := range []string{`{"a":"b","a":"c"}`, `{"a":`, "[\"\xff\"]", `{"a":1} x`} {
		var pe *ParseError
		if _, _, err := Redact(jsontext.Value(bad), Arguments, rules); !errors.As(err, &pe) {
			t.Errorf("Redact(%q) = %v, want a *ParseError", bad, err)
		}
	}
}

func BenchmarkRedactResult(b *testing.B) {
	result := jsontext.Value(`{"content":[{"type":"text","text":"` + strings.Repeat("lorem ipsum dolor sit amet ", 36) + `"}],"structuredContent":{"rows":[{"id":"1","note":"AKIAABCDEFGHIJKLMNOP"}]},"isError":false}`)
	b.SetBytes(int64(len(result)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Redact(result, Results, []Redaction{awsKeys}); err != nil {
			b.Fatal(err)
		}
	}
}
