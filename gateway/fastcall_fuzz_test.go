package gateway

import (
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// FuzzFastCallRewrite: what the fast path writes (the upstream request,
// the client's answer or error with its id put back) is one strict
// JSON-RPC message that says what it should, whatever the server sent.
func FuzzFastCallRewrite(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":"agentg-f1","result":{"content":[]}}`), "echo", []byte(`{"a":1}`), []byte(`7`))
	f.Add([]byte(`{"id":"agentg-f1","jsonrpc":"2.0","error":{"code":-32603,"message":"x"}}`), "a.b", []byte(`{}`), []byte(`"c"`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"agentg-f\u0031","result":{}}`), "", []byte(nil), []byte(`"\u00e9"`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"agentg-f1","result":{}}`), "0", []byte("0"), []byte(" 0"))
	f.Fuzz(func(t *testing.T, answer []byte, name string, args, clientID []byte) {
		const upID = "agentg-f1"
		clientID, ok := idOf(clientID)
		if !ok {
			return
		}
		if out, ok := responseTo(answer, upID, jsontext.Value(clientID)); ok {
			b, err := wire.Parse(out, wire.Limits{})
			if err != nil || len(b.Messages) != 1 || b.Messages[0].IDKey() != wire.IDKey(clientID) {
				t.Fatalf("answer %q -> %q: %v", answer, out, err)
			}
		}
		if out, ok := errorTo(answer, jsontext.Value(clientID)); ok {
			b, err := wire.Parse(out, wire.Limits{})
			if err != nil || len(b.Messages) != 1 || b.Messages[0].Kind != wire.KindErrorResponse || b.Messages[0].IDKey() != wire.IDKey(clientID) {
				t.Fatalf("error %q -> %q: %v", answer, out, err)
			}
		}
		if args != nil && !validObject(args) || !utf8.ValidString(name) {
			// A route's name is a decoded JSON string: valid UTF-8.
			return
		}
		req := upstreamCall(upID, name, args)
		b, err := wire.Parse(req, wire.Limits{})
		if err != nil {
			// Only a name the strict codec refuses (not NFC, say) may
			// fail: the client's name came through the same codec.
			if _, err2 := wire.Parse(upstreamCall(upID, "x", args), wire.Limits{}); err2 != nil {
				t.Fatalf("request %q: %v", req, err2)
			}
			return
		}
		m := b.Messages[0]
		if m.Method != "tools/call" || m.Tool != name || m.IDKey() != wire.IDKey(jsontext.Value(`"`+upID+`"`)) {
			t.Fatalf("request %q read as %q %q", req, m.Method, m.Tool)
		}
	})
}

// idOf is the id token the codec reads from id in a request (as the
// fast path has a client's id: the token, no white space around it).
func idOf(id []byte) ([]byte, bool) {
	msg := append(append([]byte(`{"jsonrpc":"2.0","id":`), id...), `,"method":"ping"}`...)
	b, err := wire.Parse(msg, wire.Limits{})
	if err != nil || len(b.Messages) != 1 {
		return nil, false
	}
	return b.Messages[0].ID, true
}

// validObject: args are arguments the codec takes in a tools/call.
func validObject(args []byte) bool {
	msg := append(append([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":`), args...), `}}`...)
	_, err := wire.Parse(msg, wire.Limits{})
	return err == nil
}
