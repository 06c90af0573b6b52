package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// FuzzMarkLegacy: whatever a 2024-11-05 client POSTs, markLegacy either
// leaves the body as it came or makes it valid JSON whose params._meta
// carries the request's id under metaRequest (a client's value replaced),
// with the message's method and id as they were.
func FuzzMarkLegacy(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"a","method":"ping"}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta":{"io.agentg/gateway-request":"forged"}}}`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/mcp?sessionid=x", bytes.NewReader(body))
		r = markLegacy(r, "EVENT")
		out, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(out, body) {
			return
		}
		var in, m struct {
			ID     json.RawMessage `json:"id"`
			Method json.RawMessage `json:"method"`
			Params struct {
				Meta map[string]json.RawMessage `json:"_meta"`
			} `json:"params"`
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%q became %q: %v", body, out, err)
		}
		json.Unmarshal(body, &in)
		if string(m.Params.Meta[metaRequest]) != `"EVENT"` || !bytes.Equal(in.ID, m.ID) || !bytes.Equal(in.Method, m.Method) {
			t.Fatalf("%q became %q", body, out)
		}
		if r.ContentLength != int64(len(out)) {
			t.Fatalf("Content-Length %d for %d bytes", r.ContentLength, len(out))
		}
	})
}
