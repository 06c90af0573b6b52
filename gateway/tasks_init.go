package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// The tasks capability. The gateway serves 2025-11-25 tasks (tasks.go)
// but its SDK server cannot say so (its ServerCapabilities has no tasks
// member), so the SDK's answer to a 2025-11-25 initialize gets one:
// tasks/list, tasks/cancel and task-augmented tools/call. A call to a
// server that has no tasks gets that server's own answer.

// taskCapability is what the gateway declares.
var taskCapability = json.RawMessage(`{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}`)

// maxInitAnswer bounds the initialize answer held to add the capability.
const maxInitAnswer = 1 << 20

// serveStateful serves r with the SDK's stateful handler; a 2025-11-25
// initialize's answer gets the tasks capability.
func (g *Gateway) serveStateful(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Mcp-Session-Id") != "" {
		g.stateful.ServeHTTP(w, r) // not an initialize: the one request without a session
		return
	}
	body, whole := peekBody(r)
	var m struct {
		Method string `json:"method"`
		Params struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	if !whole || json.Unmarshal(body, &m) != nil || m.Method != "initialize" || m.Params.ProtocolVersion != taskRevision {
		g.stateful.ServeHTTP(w, r)
		return
	}
	hw := &heldWriter{w: w}
	g.stateful.ServeHTTP(hw, r)
	hw.release()
}

// heldWriter holds an answer (the initialize's, small) until the
// handler is done, then writes it with the tasks capability added.
type heldWriter struct {
	w      http.ResponseWriter
	status int
	buf    bytes.Buffer
	over   bool // longer than maxInitAnswer: written as it came
}

func (h *heldWriter) Header() http.Header { return h.w.Header() }

func (h *heldWriter) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldWriter) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	if h.over {
		return h.w.Write(p)
	}
	if h.buf.Len()+len(p) > maxInitAnswer {
		h.over = true
		h.w.WriteHeader(h.status)
		h.w.Write(h.buf.Bytes())
		h.buf.Reset()
		return h.w.Write(p)
	}
	return h.buf.Write(p)
}

// Flush holds: the answer is written whole by release.
func (h *heldWriter) Flush() {}

func (h *heldWriter) release() {
	if h.over {
		return
	}
	if h.status == 0 {
		h.status = http.StatusOK
	}
	out := h.buf.Bytes()
	if h.status == http.StatusOK {
		if b, ok := withTaskCapability(h.w.Header().Get("Content-Type"), out); ok {
			out = b
		}
	}
	h.w.Header().Del("Content-Length")
	h.w.WriteHeader(h.status)
	h.w.Write(out)
}

// withTaskCapability is an initialize answer (JSON, or an event stream)
// with the tasks capability in its result's capabilities.
func withTaskCapability(contentType string, body []byte) ([]byte, bool) {
	add := func(msg []byte) ([]byte, bool) {
		var m rpcMessage
		var r map[string]json.RawMessage // members by their exact names
		if json.Unmarshal(msg, &m) != nil || m.Result == nil || json.Unmarshal(m.Result, &r) != nil || r["capabilities"] == nil {
			return msg, false // not an initialize result
		}
		res, ok := rewriteMember(m.Result, "capabilities", func(caps json.RawMessage) (json.RawMessage, bool) {
			var c map[string]json.RawMessage
			if json.Unmarshal(caps, &c) != nil || c == nil {
				return caps, false
			}
			c["tasks"] = taskCapability
			b, err := json.Marshal(c)
			return b, err == nil
		})
		if !ok {
			return msg, false
		}
		m.Result = res
		b, err := json.Marshal(m)
		return b, err == nil
	}
	if !bytes.HasPrefix(bytes.TrimSpace([]byte(contentType)), []byte("text/event-stream")) {
		return add(body)
	}
	sse := wire.NewSSEReader(bytes.NewReader(body), maxInitAnswer)
	var out bytes.Buffer
	changed := false
	for {
		ev, err := sse.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return body, false
		}
		if ev.HasData && wire.Classify(&ev) == wire.EventMessage {
			if b, ok := add([]byte(ev.Data)); ok {
				ev.Data, changed = string(b), true
			}
		}
		if err := wire.WriteEvent(&out, ev); err != nil {
			return body, false
		}
	}
	return out.Bytes(), changed
}
