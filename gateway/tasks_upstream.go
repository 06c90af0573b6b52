package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// The upstream half of 2025-11-25 tasks. The Go SDK v1.8.0 knows no task
// method and drops a request's task field, so the gateway sends these
// requests itself: one JSON-RPC POST on the upstream session (its id and
// revision), through the same guard transport as every other request, so
// the guard decides them (a task-augmented tools/call as any tools/call).

// taskRevision is the one revision with tasks in the core protocol
// (2026-07-28 moved them to an extension).
const taskRevision = "2025-11-25"

// maxTaskMessage bounds one message of an upstream's answer.
const maxTaskMessage = 16 << 20

var taskRequestID atomic.Uint64

// rpcMessage is one JSON-RPC message as the task path reads it.
type rpcMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *jsonrpc.Error  `json:"error,omitempty"`
}

// taskPeer is what the task path does with what a server sends on a
// task request's stream besides the answer: notifications go to notify;
// a request (input a task needs: elicitation, sampling, roots) to serve,
// whose answer goes back to the server.
type taskPeer struct {
	notify func(rpcMessage)
	serve  func(context.Context, rpcMessage) (json.RawMessage, error)
}

// rawCall sends method with params to server on the client session's
// upstream session and returns the result, or the JSON-RPC error the
// server (or the guard) answered. What else the server sends on the
// request's stream goes to peer.
func (s *session) rawCall(ctx context.Context, server, method string, params json.RawMessage, peer taskPeer) (json.RawMessage, error) {
	u, err := s.upstream(server)
	if err != nil {
		return nil, err
	}
	var result json.RawMessage
	err = u.do(ctx, func(ctx context.Context, cs *sdk.ClientSession) error {
		rev := ""
		if r := cs.InitializeResult(); r != nil {
			rev = r.ProtocolVersion
		}
		if rev != taskRevision || cs.ID() == "" {
			return &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound,
				Message: fmt.Sprintf("agentg gateway: mcp server %s speaks %s, which has no tasks (they are in %s)", server, rev, taskRevision)}
		}
		id := json.RawMessage(`"agentg-task-` + strconv.FormatUint(taskRequestID.Add(1), 10) + `"`)
		body, err := json.Marshal(rpcMessage{JSONRPC: "2.0", ID: id, Method: method, Params: params})
		if err != nil {
			return err
		}
		tr, err := newGuardTransport(s.g, u.bind, s.who)
		if err != nil {
			return err
		}
		hc := &http.Client{Transport: tr}
		post := func(body []byte) (*http.Response, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.bind.Endpoint, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", cs.ID())
			req.Header.Set("MCP-Protocol-Version", rev)
			return hc.Do(req)
		}
		resp, err := post(body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return sdk.ErrSessionMissing // the server forgot the session: do opens another
		}
		// A request of the server's on the stream: served (the client
		// asked), and the answer POSTed back on the session.
		reply := func(m rpcMessage) {
			res, err := peer.serve(ctx, m)
			out := rpcMessage{JSONRPC: "2.0", ID: m.ID, Result: res}
			if err != nil {
				var je *jsonrpc.Error
				if !errors.As(err, &je) {
					je = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
				}
				out.Result, out.Error = nil, je
			}
			b, err := json.Marshal(out)
			if err != nil {
				return
			}
			if resp, err := post(b); err == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
			}
		}
		result, err = readAnswer(resp, id, peer.notify, reply)
		return err
	})
	return result, err
}

// readAnswer reads the answer to the request id from resp: a JSON body,
// or an event stream whose notifications go to notify and requests to
// reply (each in its own goroutine: its answer may need the client, and
// the stream goes on meanwhile) until the answer.
func readAnswer(resp *http.Response, id json.RawMessage, notify, reply func(rpcMessage)) (json.RawMessage, error) {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	answer := func(m rpcMessage) (json.RawMessage, error) {
		if m.Error != nil {
			return nil, m.Error
		}
		if m.Result == nil {
			return nil, errors.New("an answer with neither result nor error")
		}
		return m.Result, nil
	}
	switch ct {
	case "application/json":
		var m rpcMessage
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxTaskMessage)).Decode(&m); err != nil {
			return nil, fmt.Errorf("the answer: %w", err)
		}
		if !bytes.Equal(m.ID, id) {
			return nil, errors.New("the answer is to another request")
		}
		return answer(m)
	case "text/event-stream":
		sse := wire.NewSSEReader(resp.Body, maxTaskMessage)
		for {
			ev, err := sse.Next()
			if err != nil {
				return nil, fmt.Errorf("the stream ended before the answer: %w", err)
			}
			if !ev.HasData || wire.Classify(&ev) != wire.EventMessage {
				continue
			}
			var m rpcMessage
			if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
				return nil, fmt.Errorf("a message of the stream: %w", err)
			}
			switch {
			case m.Method == "" && bytes.Equal(m.ID, id):
				return answer(m)
			case m.Method != "" && m.ID == nil && notify != nil:
				notify(m)
			case m.Method != "" && m.ID != nil && reply != nil:
				go reply(m)
			}
		}
	}
	return nil, fmt.Errorf("an answer of type %q", ct)
}

// The task ids a client sees are the gateway's, never a server's:
// random, one table per client session, so a client can neither guess
// another's task nor name one of another session's.

// taskRef is a task as a server knows it.
type taskRef struct{ server, id string }

// relatedTask is the _meta key that names a message's task.
const relatedTask = "io.modelcontextprotocol/related-task"

// rewriteTaskID returns obj (a JSON object) with its string member
// taskId mapped by fn; ok false when fn refuses it.
func rewriteTaskID(obj json.RawMessage, fn func(string) (string, bool)) (json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return obj, false
	}
	var id string
	if raw, has := m["taskId"]; !has || json.Unmarshal(raw, &id) != nil {
		return obj, false
	}
	to, ok := fn(id)
	if !ok {
		return obj, false
	}
	m["taskId"], _ = json.Marshal(to)
	out, err := json.Marshal(m)
	if err != nil {
		return obj, false
	}
	return out, true
}

// rewriteMember is obj with its member key passed through f; obj as it
// is when it has no such member.
func rewriteMember(obj json.RawMessage, key string, f func(json.RawMessage) (json.RawMessage, bool)) (json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return obj, false
	}
	v, has := m[key]
	if !has {
		return obj, true
	}
	nv, ok := f(v)
	if !ok {
		return obj, false
	}
	m[key] = nv
	out, err := json.Marshal(m)
	return out, err == nil
}

// rewriteRelated maps the taskId under _meta's related-task, if any.
func rewriteRelated(obj json.RawMessage, fn func(string) (string, bool)) (json.RawMessage, bool) {
	return rewriteMember(obj, "_meta", func(meta json.RawMessage) (json.RawMessage, bool) {
		return rewriteMember(meta, relatedTask, func(rt json.RawMessage) (json.RawMessage, bool) {
			return rewriteTaskID(rt, fn)
		})
	})
}
