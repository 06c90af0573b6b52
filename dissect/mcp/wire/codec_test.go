package wire

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// specExamples returns the JSON-RPC examples of the specification's pages
// and schema examples (testdata/spec), by name.
func specExamples(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	docs, _ := filepath.Glob("testdata/spec/docs-*.txt")
	for _, f := range docs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := ""
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --\n") {
				name = filepath.Base(f) + ":" + strings.TrimSuffix(line[3:], " --\n")
				continue
			}
			out[name] = append(out[name], line...)
		}
	}
	err := filepath.WalkDir("testdata/spec/examples-2026-07-28", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if bytes.Contains(b, []byte(`"jsonrpc"`)) {
			out[path] = b
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 250 {
		t.Fatalf("only %d spec examples found", len(out))
	}
	return out
}

// Every JSON-RPC message the specification shows, in every revision, is
// one Parse accepts.
func TestParseSpecExamples(t *testing.T) {
	for name, b := range specExamples(t) {
		if _, err := Parse(b, Limits{}); err != nil {
			t.Errorf("%s: %v\n%s", name, err, b)
		}
	}
	b, err := os.ReadFile("testdata/spec/examples-2026-07-28/CallToolRequest/call-tool-request.json")
	if err != nil {
		t.Fatal(err)
	}
	body, err := Parse(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := body.Messages[0]
	if m.Kind != KindRequest || string(m.ID) != `"call-tool-example"` || m.Tool != "get_weather" || m.Meta == nil {
		t.Errorf("got %v %s %q meta %s", m.Kind, m.ID, m.Tool, m.Meta)
	}
	if v, ok := m.Arg("/location"); !ok || v.Text != "New York" || v.Kind != ValueString {
		t.Errorf("Arg(/location) = %+v, %v", v, ok)
	}
}

// Every message the official Go SDK writes, client and server, at every
// revision, parses, and reads as the SDK meant it.
func TestParseSDK(t *testing.T) {
	for _, rev := range revisions {
		fromClient, fromServer := sdkTranscript(t, rev)
		for _, msg := range append(fromClient, fromServer...) {
			body, err := Parse(msg, Limits{})
			if err != nil {
				t.Errorf("%s: %v\n%s", rev, err, msg)
				continue
			}
			if body.Batch || len(body.Messages) != 1 || !bytes.Equal(body.Messages[0].Raw, msg) {
				t.Errorf("%s: %s parsed as %+v", rev, msg, body)
			}
		}
		call := mustParse(t, find(fromClient, `"greet"`, "tools/call"))
		if call.Kind != KindRequest || call.Tool != "greet" || string(call.ID) != "3" || call.IDKey() != "n:3" {
			t.Errorf("%s: call read as %v %q id %s", rev, call.Kind, call.Tool, call.ID)
		}
		if v, ok := call.Arg("/name"); !ok || v.Text != `Zoë "the" <admin>` {
			t.Errorf("%s: Arg(/name) = %q", rev, v.Text)
		}
		if (call.Meta != nil) != (rev >= "2026-07-28") {
			t.Errorf("%s: meta %s", rev, call.Meta)
		}
		if m := mustParse(t, find(fromClient, "resources/read")); m.URI != "file:///notes/a.txt" {
			t.Errorf("%s: URI %q", rev, m.URI)
		}
		if m := mustParse(t, find(fromClient, "prompts/get")); m.Prompt != "review" || m.Tool != "" {
			t.Errorf("%s: prompt %q tool %q", rev, m.Prompt, m.Tool)
		}
		if m := mustParse(t, find(fromServer, `"id":3`)); m.Kind != KindResponse || m.IDKey() != call.IDKey() || m.Result == nil {
			t.Errorf("%s: response %v %s", rev, m.Kind, m.ID)
		}
		if rev < "2026-07-28" {
			if m := mustParse(t, find(fromClient, "notifications/initialized")); m.Kind != KindNotification {
				t.Errorf("%s: initialized read as %v", rev, m.Kind)
			}
		}
	}
}

func mustParse(t testing.TB, b []byte) *Message {
	t.Helper()
	body, err := Parse(b, Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return body.Messages[0]
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		check    func(*Message) bool
	}{
		{"string id kept as sent", `{"jsonrpc":"2.0","id":"a\u0062","method":"ping"}`,
			func(m *Message) bool { return string(m.ID) == `"a\u0062"` && m.IDKey() == "s:ab" }},
		{"integer id", `{"jsonrpc":"2.0","id":-9007199254740991,"method":"ping"}`,
			func(m *Message) bool { return string(m.ID) == "-9007199254740991" }},
		{"members in any order", `{"params":{"arguments":{"a":1},"name":"t"},"method":"tools/call","id":0,"jsonrpc":"2.0"}`,
			func(m *Message) bool { return m.Tool == "t" && string(m.Args) == `{"a":1}` && m.Kind == KindRequest }},
		{"whitespace everywhere", " \r\n\t{ \"jsonrpc\" : \"2.0\" , \"method\" : \"tools/call\" , \"id\" : 7 , \"params\" : { \"name\" : \"t\" , \"arguments\" : { } } } \n",
			func(m *Message) bool { return m.Tool == "t" && string(m.Args) == "{ }" && string(m.ID) == "7" }},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			func(m *Message) bool { return m.Kind == KindNotification && m.ID == nil }},
		{"null params are absent", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":null}`,
			func(m *Message) bool { return m.Params == nil }},
		{"error with null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`,
			func(m *Message) bool { return m.Kind == KindErrorResponse && string(m.ID) == "null" && m.IDKey() == "" }},
		{"error without id (2025-11-25)", `{"jsonrpc":"2.0","error":{"code":-32600,"message":"x"}}`,
			func(m *Message) bool { return m.Kind == KindErrorResponse && m.ID == nil }},
		{"task-augmented call (2025-11-25)", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{},"task":{"ttl":60000}}}`,
			func(m *Message) bool { return string(m.Task) == `{"ttl":60000}` }},
		{"retry with inputResponses (2026-07-28)", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta":{},"name":"t","inputResponses":{"a":{"action":"accept"}},"requestState":"x"}}`,
			func(m *Message) bool {
				return string(m.InputResponses) == `{"a":{"action":"accept"}}` && m.Args == nil && m.RequestState == "x"
			}},
		{"tasks/result (2025-11-25)", `{"jsonrpc":"2.0","id":3,"method":"tasks/result","params":{"taskId":"t-\u0031"}}`,
			func(m *Message) bool { return m.TaskID == "t-1" }},
		{"a taskId that is not a string is no task id", `{"jsonrpc":"2.0","id":3,"method":"tasks/result","params":{"taskId":1}}`,
			func(m *Message) bool { return m.TaskID == "" }},
		{"uri with escaped slashes", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:\/\/\/a"}}`,
			func(m *Message) bool { return m.URI == "file:///a" }},
		{"uri with encoding/json's HTML escapes", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"https://x/?a=1\u0026b=\u003C2\u003e"}}`,
			func(m *Message) bool { return m.URI == "https://x/?a=1&b=<2>" }},
		{"NFC name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"café"}}`,
			func(m *Message) bool { return m.Tool == "café" }},
		{"escapes in other strings", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"cmd":"rm \u002drf"}}}`,
			func(m *Message) bool { v, _ := m.Arg("/cmd"); return v.Text == "rm -rf" }},
		{"names differing in more than case", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1,"ab":2,"_Meta2":3}}`,
			func(m *Message) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, []byte(tc.in))
			if !tc.check(m) {
				t.Errorf("read as %+v", m)
			}
		})
	}
}

func TestParseBatch(t *testing.T) {
	in := `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}, {"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"r","result":{}}]`
	body, err := Parse([]byte(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !body.Batch || len(body.Messages) != 3 || body.Messages[0].Tool != "a" || body.Messages[1].Kind != KindNotification || body.Messages[2].Kind != KindResponse {
		t.Fatalf("%+v", body)
	}
	var parts [][]byte
	for _, m := range body.Messages {
		parts = append(parts, m.Raw)
	}
	if got := string(EncodeBatch(parts)); got != strings.ReplaceAll(in, ", ", ",") {
		t.Errorf("EncodeBatch = %s", got)
	}
	one, err := Parse([]byte(`[{"jsonrpc":"2.0","method":"x"}]`), Limits{})
	if err != nil || !one.Batch || len(one.Messages) != 1 {
		t.Errorf("batch of one: %+v %v", one, err)
	}
}

func TestParseRefuses(t *testing.T) {
	deep := strings.Repeat(`[`, 64) + strings.Repeat(`]`, 64)
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`
	for _, tc := range []struct {
		name, in, reason string
		code             int
	}{
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}`, ReasonDuplicateKey, CodeParseError},
		{"duplicate name in params", call + `{"name":"safe","name":"evil"}}`, ReasonDuplicateKey, CodeParseError},
		{"duplicate by escape", call + `{"name":"safe","n\u0061me":"evil"}}`, ReasonDuplicateKey, CodeParseError},
		{"duplicate deep in arguments", call + `{"name":"t","arguments":{"a":{"b":1,"b":2}}}}`, ReasonDuplicateKey, CodeParseError},
		{"Method instead of method", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"Method next to method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"ID", `{"jsonrpc":"2.0","ID":1,"method":"x"}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"Params", `{"jsonrpc":"2.0","id":1,"method":"x","Params":{}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"Name in params", call + `{"Name":"evil"}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"Kelvin sign folds to k", call + `{"name":"t","arguments":{"k":1,"\u212a":2}}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"Arguments next to arguments", call + `{"name":"t","arguments":{},"Arguments":{"x":1}}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"URI", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"URI":"file:///etc/passwd"}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"TaskID", `{"jsonrpc":"2.0","id":1,"method":"tasks/result","params":{"TaskID":"t-1"}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"case variants in arguments", call + `{"name":"t","arguments":{"command":"ls","Command":"rm -rf /"}}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"case variants in a result", `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","NAME":"b"}]}}`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"__proto__ in arguments", call + `{"name":"t","arguments":{"__proto__":{"command":"rm -rf /"}}}}`, ReasonProtoKey, CodeInvalidRequest},
		{"escaped __proto__", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"__pr\u006fto__":{}}}`, ReasonProtoKey, CodeInvalidRequest},
		{"escaped tool name", call + `{"name":"delete\u005fproject"}}`, ReasonEscapedName, CodeInvalidRequest},
		{"any escape in a tool name", call + `{"name":"a\/b"}}`, ReasonEscapedName, CodeInvalidRequest},
		{"escaped method", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"t"}}`, ReasonEscapedName, CodeInvalidRequest},
		{"\\u in a uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///etc/p\u0061sswd"}}`, ReasonEscapedName, CodeInvalidRequest},
		{"\\u after \\\\ in a uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a\\\u0026\u0061"}}`, ReasonEscapedName, CodeInvalidRequest},
		{"escaped prompt name", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"\u0070"}}`, ReasonEscapedName, CodeInvalidRequest},
		{"non-NFC tool name", call + "{\"name\":\"cafe\u0301\"}}", ReasonNonNFCName, CodeInvalidRequest},
		{"tool name NFKC changes", call + "{\"name\":\"\uff45cho\"}}", ReasonNonNFCName, CodeInvalidRequest},
		{"non-NFC method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\u212b\"}", ReasonNonNFCName, CodeInvalidRequest},
		{"invalid UTF-8", call + "{\"name\":\"t\",\"arguments\":{\"a\":\"\xff\"}}}", ReasonInvalidUTF8, CodeParseError},
		{"lone surrogate", call + `{"name":"t","arguments":{"a":"\ud800"}}}`, ReasonInvalidUTF8, CodeParseError},
		{"BOM", "\xef\xbb\xbf" + `{"jsonrpc":"2.0","id":1,"method":"x"}`, ReasonBOM, CodeParseError},
		{"too deep", call + `{"name":"t","arguments":{"a":` + deep + `}}}`, ReasonTooDeep, CodeParseError},
		{"long number", call + `{"name":"t","arguments":{"a":1` + strings.Repeat("0", 64) + `}}}`, ReasonNumberTooLong, CodeParseError},
		{"trailing value", `{"jsonrpc":"2.0","method":"x"}{"jsonrpc":"2.0","method":"y"}`, ReasonTrailingData, CodeParseError},
		{"trailing garbage", `{"jsonrpc":"2.0","method":"x"} x`, ReasonTrailingData, CodeParseError},
		{"not JSON", `{"jsonrpc":"2.0",`, ReasonSyntax, CodeParseError},
		{"empty body", ``, ReasonSyntax, CodeParseError},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"x"}`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"jsonrpc escaped", `{"jsonrpc":"2\u002e0","id":1,"method":"x"}`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"no jsonrpc", `{"id":1,"method":"x"}`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":1}`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"method and result", `{"jsonrpc":"2.0","id":1,"method":"x","result":{}}`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"nothing", `{"jsonrpc":"2.0","id":1}`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"a string", `"tools/call"`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"fractional id", `{"jsonrpc":"2.0","id":1.5,"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"1.0 id", `{"jsonrpc":"2.0","id":1.0,"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"exponent id", `{"jsonrpc":"2.0","id":1e3,"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"-0 id", `{"jsonrpc":"2.0","id":-0,"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"unsafe integer id", `{"jsonrpc":"2.0","id":9007199254740993,"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"bool id", `{"jsonrpc":"2.0","id":true,"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"null id in a request", `{"jsonrpc":"2.0","id":null,"method":"x"}`, ReasonBadID, CodeInvalidRequest},
		{"null id in a result", `{"jsonrpc":"2.0","id":null,"result":{}}`, ReasonBadID, CodeInvalidRequest},
		{"result without id", `{"jsonrpc":"2.0","result":{}}`, ReasonBadID, CodeInvalidRequest},
		{"empty batch", ` [ ] `, ReasonEmptyBatch, CodeInvalidRequest},
		{"batch of a number", `[1]`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"nested batch", `[[{"jsonrpc":"2.0","method":"x"}]]`, ReasonNotJSONRPC, CodeInvalidRequest},
		{"one bad element fails the batch", `[{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","method":"y","METHOD":"z"}]`, ReasonCaseVariantKey, CodeInvalidRequest},
		{"params an array", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["t"]}`, ReasonBadParams, CodeInvalidParams},
		{"tools/call without params", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, ReasonBadParams, CodeInvalidParams},
		{"tools/call without a name", call + `{"arguments":{}}}`, ReasonBadParams, CodeInvalidParams},
		{"tools/call name not a string", call + `{"name":["t"]}}`, ReasonBadParams, CodeInvalidParams},
		{"arguments not an object", call + `{"name":"t","arguments":"rm -rf /"}}`, ReasonBadParams, CodeInvalidParams},
		{"tools/call notification without a name", `{"jsonrpc":"2.0","method":"tools/call","params":{}}`, ReasonBadParams, CodeInvalidParams},
		{"resources/read without uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}`, ReasonBadParams, CodeInvalidParams},
		{"prompts/get without name", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"arguments":{}}}`, ReasonBadParams, CodeInvalidParams},
		{"result not an object", `{"jsonrpc":"2.0","id":1,"result":[]}`, ReasonBadResult, CodeInvalidRequest},
		{"error not an object", `{"jsonrpc":"2.0","id":1,"error":"no"}`, ReasonBadResult, CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), Limits{})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Reason != tc.reason || pe.Code != tc.code {
				t.Errorf("got %s (%d): %v; want %s (%d)", pe.Reason, pe.Code, pe, tc.reason, tc.code)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	msg := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":[[1234]]}}}`)
	for _, tc := range []struct {
		lim    Limits
		reason string
	}{
		{Limits{}, ""},
		{Limits{MaxMessage: len(msg)}, ""},
		{Limits{MaxMessage: len(msg) - 1}, ReasonTooLarge},
		{Limits{MaxDepth: 5}, ""},
		{Limits{MaxDepth: 4}, ReasonTooDeep},
		{Limits{MaxNumberLen: 4}, ""},
		{Limits{MaxNumberLen: 3}, ReasonNumberTooLong},
	} {
		_, err := Parse(msg, tc.lim)
		var pe *ParseError
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%+v: %v", tc.lim, err)
		case tc.reason != "" && (!errors.As(err, &pe) || pe.Reason != tc.reason):
			t.Errorf("%+v: %v, want %s", tc.lim, err, tc.reason)
		}
	}
}

func TestArg(t *testing.T) {
	m := mustParse(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"shell.run","arguments":`+
		`{"command":"rm -rf /","opts":{"n":12.50,"force":true,"none":null,"list":["a",{"b":"c"}]},"a/b":1,"m~n":2,"Path":"/etc","":"empty","e":"\u00e9\n"}}}`))
	for _, tc := range []struct {
		ptr  string
		kind ValueKind
		text string
	}{
		{"/command", ValueString, "rm -rf /"},
		{"/opts/n", ValueNumber, "12.50"},
		{"/opts/force", ValueBool, "true"},
		{"/opts/none", ValueNull, "null"},
		{"/opts/list/0", ValueString, "a"},
		{"/opts/list/1/b", ValueString, "c"},
		{"/opts/list/1", ValueObject, `{"b":"c"}`},
		{"/opts/list", ValueArray, `["a",{"b":"c"}]`},
		{"/a~1b", ValueNumber, "1"},
		{"/m~0n", ValueNumber, "2"},
		{"/path", ValueString, "/etc"}, // what encoding/json would read into a Path field
		{"/", ValueString, "empty"},
		{"/e", ValueString, "é\n"},
	} {
		v, ok := m.Arg(tc.ptr)
		if !ok || v.Kind != tc.kind || v.Text != tc.text {
			t.Errorf("Arg(%q) = %+v, %v; want %v %q", tc.ptr, v, ok, tc.kind, tc.text)
		}
	}
	if v, ok := m.Arg(""); !ok || v.Kind != ValueObject {
		t.Errorf(`Arg("") = %+v, %v`, v, ok)
	}
	for _, ptr := range []string{"command", "/nope", "/opts/list/2", "/opts/list/-", "/opts/list/01", "/opts/list/+1", "/command/x", "/a~2b", "/opts/n/0"} {
		if v, ok := m.Arg(ptr); ok {
			t.Errorf("Arg(%q) = %+v, want not found", ptr, v)
		}
	}
	var none Message
	if _, ok := none.Arg("/x"); ok {
		t.Error("Arg on a message without arguments found something")
	}
}

func TestSplice(t *testing.T) {
	call := mustParse(t, []byte(`{"jsonrpc":"2.0", "id":"x","method":"tools/call","params":{"name":"t","arguments": {"k":"AKIA"} ,"_meta":{}}}`))
	got, ok := call.WithArgs([]byte(`{"k":"[REDACTED:aws]"}`))
	if want := `{"jsonrpc":"2.0", "id":"x","method":"tools/call","params":{"name":"t","arguments": {"k":"[REDACTED:aws]"} ,"_meta":{}}}`; !ok || string(got) != want {
		t.Errorf("WithArgs = %s", got)
	}
	if _, ok := call.WithResult([]byte(`{}`)); ok {
		t.Error("WithResult on a request")
	}
	resp := mustParse(t, []byte(`{"result" : {"content":[]},"jsonrpc":"2.0","id":1}`))
	got, ok = resp.WithResult([]byte(`{"content":[],"isError":true}`))
	if want := `{"result" : {"content":[],"isError":true},"jsonrpc":"2.0","id":1}`; !ok || string(got) != want {
		t.Errorf("WithResult = %s", got)
	}
	if _, ok := resp.WithArgs([]byte(`{}`)); ok {
		t.Error("WithArgs on a response")
	}
}

func BenchmarkParseToolsCall(b *testing.B) {
	args := `{"query":"` + strings.Repeat("select * from t where x = 1 and y = 2; ", 18) + `","limit":50,"opts":{"deep":true,"tags":["a","b","c"]}}`
	msg := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"_meta":{"progressToken":"p-42"},"name":"db.query","arguments":` + args + `}}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		body, err := Parse(msg, Limits{})
		if err != nil || body.Messages[0].Tool != "db.query" {
			b.Fatal(err)
		}
	}
}

func TestResultType(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"InputRequiredResult/input-required-result-with-request-state-only.json", "input_required"},
		{"CallToolResult/result-with-unstructured-text.json", "complete"},
	} {
		b, err := os.ReadFile("testdata/spec/examples-2026-07-28/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := ResultType(b); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.file, got, tc.want)
		}
	}
	for in, want := range map[string]string{`{"content":[]}`: "complete", `{"resultType":1}`: "", `{"resultType":"x"}`: "x"} {
		if got := ResultType([]byte(in)); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// A decided method in another case or with white space around it is
// refused: a lenient server could dispatch it as the method, and agentg
// would have read an unknown one (FuzzGuard found "tools/CAll").
func TestParseRefusesMethodVariants(t *testing.T) {
	for _, method := range []string{"tools/CAll", "TOOLS/CALL", " tools/call", "tools/call ", "Prompts/Get", "resources/READ"} {
		body := `{"jsonrpc":"2.0","id":1,"method":` + strconv.Quote(method) + `,"params":{"name":"delete_x","uri":"file:///x"}}`
		_, err := Parse([]byte(body), Limits{})
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Reason != ReasonMethodVariant {
			t.Errorf("%q: Parse = %v, want %s", method, err, ReasonMethodVariant)
		}
	}
	if _, err := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), Limits{}); err != nil {
		t.Errorf("tools/list: %v", err)
	}
}
