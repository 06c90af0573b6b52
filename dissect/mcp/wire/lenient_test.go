package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf16"
)

const rpcCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete"}}`

func encode16(s string, o binary.AppendByteOrder, bom bool) []byte {
	var b []byte
	if bom {
		b = o.AppendUint16(b, 0xfeff)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = o.AppendUint16(b, u)
	}
	return b
}

func encode32(s string, o binary.AppendByteOrder) []byte {
	var b []byte
	for _, r := range s {
		b = o.AppendUint32(b, uint32(r))
	}
	return b
}

func TestMayBeJSONRPC(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    []byte
		charset string
		want    bool
	}{
		{"plain", []byte(rpcCall), "", true},
		{"batch", []byte("[" + rpcCall + "]"), "", true},
		{"bom and space", []byte("\xef\xbb\xbf \r\n\t" + rpcCall), "", true},
		{"escaped name", []byte(`{"jsonrp\u0063":"2.0","method":"tools/call","id":1,"id":2}`), "", true},
		{"all escaped", []byte(`{"\u006a\u0073\u006f\u006e\u0072\u0070\u0063":"2.0"}`), "", true},
		{"upper case", []byte(`{"JSONRPC":"2.0","Method":"tools/call"}`), "", true},
		{"long s", []byte(`{"j` + "\u017f" + `onrpc":"2.0"}`), "", true},
		{"long s escaped", []byte(`{"j\u017fonrpc":"2.0"}`), "", true},
		{"trailing garbage", []byte(rpcCall + "garbage"), "", true},
		{"json5 comments", []byte("// a comment\n/* another */ {jsonrpc: '2.0'}"), "", true},
		{"unterminated comment", []byte("/* {\"jsonrpc\":1}"), "", true}, // read as text: the name is there
		{"single quotes", []byte(`{'jsonrpc':'2.0'}`), "", true},
		{"unquoted", []byte(`{jsonrpc:'2.0'}`), "", true},
		{"hex escape", []byte(`{'\x6asonrpc':'2.0'}`), "", true},
		{"brace escape", []byte(`{"\u{6a}sonrpc":"2.0"}`), "", true},
		{"utf-7 name", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools+AC8-call"}`), "utf-7", true},
		{"utf-7 key", []byte(`{"+AGo-sonrpc":"2.0","id":1}`), "utf-7", true},
		{"utf-7 key, no charset", []byte(`{"+AGo-sonrpc":"2.0","id":1}`), "", false},
		{"utf-7 brace", []byte(`+AHs-"jsonrpc":"2.0"}`), "UTF-7", true},
		{"utf-16le bom", encode16(rpcCall, binary.LittleEndian, true), "", true},
		{"utf-16be bom", encode16(rpcCall, binary.BigEndian, true), "", true},
		{"utf-16le sniffed", encode16(rpcCall, binary.LittleEndian, false), "", true},
		{"utf-16be by charset", encode16(rpcCall, binary.BigEndian, false), "utf-16be", true},
		{"utf-32le", encode32(rpcCall, binary.LittleEndian), "", true},
		{"utf-32be", encode32(rpcCall, binary.BigEndian), "utf-32", true},
		{"unknown charset", []byte(`{"a":1}`), "x-mystery", true},
		{"latin1 plain", []byte(`{"a":1}`), "iso-8859-1", false},
		{"not rpc", []byte(`{"query":"select","rows":[1,2]}`), "", false},
		{"form", []byte(`jsonrpc=2.0&method=tools%2Fcall&params[name]=delete`), "", true},
		{"form, encoded name", []byte(`%6Asonrpc=2.0&method=tools/call`), "", true},
		{"form, long s", []byte(`j%C5%BFonrpc=2.0`), "", true},
		{"multipart", []byte("--b\r\nContent-Disposition: form-data; name=\"jsonrpc\"\r\n\r\n2.0\r\n--b--"), "", true},
		{"form, other", []byte(`a=1&b=jsonrpcx`), "", false},
		{"text", []byte(`hello world`), "", false},
		{"longer name", []byte(`{"jsonrpcx":1,"xjsonrpc":2}`), "", false},
		{"empty", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MayBeJSONRPC(tc.body, tc.charset); got != tc.want {
				t.Fatalf("mayBeJSONRPC(%q, %q) = %v, want %v", tc.body, tc.charset, got, tc.want)
			}
			// An answer is never read as a form.
			form := strings.HasPrefix(tc.name, "form") || tc.name == "multipart" || tc.name == "unterminated comment"
			if got := AnswerMayBeJSONRPC(tc.body, tc.charset); got != (tc.want && !form) {
				t.Fatalf("answerMayBeJSONRPC(%q, %q) = %v, want %v", tc.body, tc.charset, got, tc.want && !form)
			}
		})
	}
}

// lenientRPC is what a lenient Go server needs to find: a Jsonrpc field,
// matched the way encoding/json matches names.
type lenientRPC struct {
	Jsonrpc *string `json:"jsonrpc"`
	Method  *string `json:"method"`
}

// lenientFinds reports whether a lenient decoder reads b as JSON-RPC:
// encoding/json whole, or json.Decoder reading one value (what follows
// ignored), into one message or a batch.
func lenientFinds(b []byte) bool {
	var one lenientRPC
	if json.Unmarshal(b, &one) == nil && one.Jsonrpc != nil {
		return true
	}
	var batch []lenientRPC
	if json.Unmarshal(b, &batch) == nil {
		for _, m := range batch {
			if m.Jsonrpc != nil {
				return true
			}
		}
	}
	one = lenientRPC{}
	if json.NewDecoder(bytes.NewReader(b)).Decode(&one) == nil && one.Jsonrpc != nil {
		return true
	}
	batch = nil
	if json.NewDecoder(bytes.NewReader(b)).Decode(&batch) == nil {
		for _, m := range batch {
			if m.Jsonrpc != nil {
				return true
			}
		}
	}
	return false
}

// FuzzDetect: whenever a lenient reader finds a JSON-RPC message in a
// body (as sent, or decoded from UTF-16 the way a reader that sniffs it
// would), the detector must have flagged it; and whatever the strict
// codec accepts, the detector flags.
func FuzzDetect(f *testing.F) {
	for _, s := range []string{rpcCall, `{"JSONRPC":"2.0"}`, `{"jsonrp\u0063":"2.0","a":1,"a":2}`, rpcCall + "]",
		`[{"jsonrpc":"2.0"}]`, `{"a":{"jsonrpc":1}}`, `{"j\u017fonrpc":"2.0"}`, " \t{\"Jsonrpc\":null}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		flagged := MayBeJSONRPC(b, "")
		if !flagged && lenientFinds(b) {
			t.Fatalf("encoding/json reads %q as JSON-RPC; the detector did not flag it", b)
		}
		if _, err := Parse(b, Limits{}); err == nil && !flagged {
			t.Fatalf("Parse accepts %q; the detector did not flag it", b)
		}
		// The same text in UTF-16, as a reader that sniffs it decodes it.
		if s := string(b); !strings.ContainsRune(s, 0xfffd) {
			le := encode16(s, binary.LittleEndian, false)
			if lenientFinds(b) && !MayBeJSONRPC(le, "") {
				t.Fatalf("%q in UTF-16LE was not flagged", b)
			}
			if lenientFinds(b) && !MayBeJSONRPC(encode7(s), "utf-7") {
				t.Fatalf("%q in UTF-7 was not flagged", b)
			}
		}
	})
}

// encode7 spells every letter of s in UTF-7's base64 (one run per
// letter), the rest as it is.
func encode7(s string) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b []byte
	for _, r := range s {
		if r == '+' {
			b = append(b, "+-"...)
			continue
		}
		if r < 'a' || r > 'z' {
			b = append(b, string(r)...)
			continue
		}
		v := uint32(r) << 2 // 16 bits, padded to 18
		b = append(b, '+', alphabet[v>>12&63], alphabet[v>>6&63], alphabet[v&63], '-')
	}
	return b
}
