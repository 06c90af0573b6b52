package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzTaskRewrite: whatever a server answers, rewriting its task ids
// never fails open: when rewriteTaskID says it rewrote, the result is an
// object whose taskId is the mapped id (the server's never shows
// through); when the map refuses the id, nothing is said rewritten. And
// withTaskCapability's output, when it says it added the capability, is
// an answer with it.
func FuzzTaskRewrite(f *testing.F) {
	f.Add([]byte(`{"taskId":"abc","status":"working"}`), "text/event-stream")
	f.Add([]byte(`{"task":{"taskId":"abc"},"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"abc"}}}`), "application/json")
	f.Add([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"capabilities\":{}}}\n\n"), "text/event-stream")
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"tools":{}}}}`), "application/json")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		const gw = "GATEWAY-ID"
		out, ok := rewriteTaskID(body, func(up string) (string, bool) { return gw, true })
		if ok {
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil || m["taskId"] != gw {
				t.Fatalf("rewritten %q to %q", body, out)
			}
		}
		if _, ok := rewriteTaskID(body, func(string) (string, bool) { return "", false }); ok {
			t.Fatalf("%q: rewritten with an id the table refused", body)
		}
		if out, ok := rewriteRelated(body, func(string) (string, bool) { return gw, true }); ok && json.Valid(body) && !json.Valid(out) {
			t.Fatalf("related-task rewrite of %q: %q", body, out)
		}
		if out, ok := withTaskCapability(ct, body); ok {
			s := string(out)
			if strings.HasPrefix(ct, "text/event-stream") {
				_, s, _ = strings.Cut(s, "data: ")
				s, _, _ = strings.Cut(s, "\n")
			}
			var m struct {
				Result struct {
					Capabilities map[string]json.RawMessage `json:"capabilities"`
				} `json:"result"`
			}
			if err := json.Unmarshal([]byte(s), &m); err != nil || m.Result.Capabilities["tasks"] == nil {
				// An SSE answer may carry the rewritten message after
				// other events: only a first-event message is checked.
				if !strings.HasPrefix(ct, "text/event-stream") {
					t.Fatalf("capability added to %q: %q", body, out)
				}
			}
		}
	})
}
