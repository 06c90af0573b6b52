package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// 2025-11-25 tasks through the gateway (basic/utilities/tasks.mdx): a
// client's task-augmented tools/call, tasks/get, tasks/result,
// tasks/cancel and tasks/list, and the notifications/tasks/status a
// server sends on those requests' streams.
//
// The Go SDK v1.8.0, the gateway's server toward clients, has no task
// method and drops a tools/call's task field, so these requests are
// taken before it (ServeHTTP: a 2025-11-25 POST on a session) and served
// here, and their upstream half is the gateway's own request on the
// upstream session (tasks_upstream.go), decided by the guard as every
// other. Everything else about the session stays the SDK's.
//
// Routing and isolation: a task created through the gateway gets a
// task id of the gateway's own (130 random bits), kept in the client
// session's table beside the server and the server's id for it. Every
// task method looks the id up in the asking session's table only, so a
// client can reach no other session's task, whatever id it sends (it
// gets "task not found", as for an id that never was); tasks/list lists
// only the session's tasks; the session's agent must be the agent that
// opened it.
//
// A request a server sends on a task request's stream (the input an
// input_required task waits for, delivered during tasks/result:
// elicitation, sampling, roots) goes to the client session, which the
// SDK asks on its own stream, with the task named by the gateway's id;
// the client's answer goes back to the server on the upstream session.
//
// Not carried yet: a tool's execution.taskSupport in tools/list (the
// SDK's Tool has no such field: a client asks for a task explicitly).

// taskMethods are the methods the task path serves.
var taskMethods = map[string]bool{"tasks/get": true, "tasks/result": true, "tasks/cancel": true, "tasks/list": true}

// maxTaskBody bounds the request body the task path reads to decide; a
// longer body goes to the SDK whole (its task field, if any, is dropped
// there: the call runs as a plain one, still decided by the guard).
const maxTaskBody = 1 << 20

// taskTable is one client session's tasks.
type taskTable struct {
	mu   sync.Mutex
	byGW map[string]taskRef
	byUp map[taskRef]string
}

func (s *session) taskTable() *taskTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tasks == nil {
		s.tasks = &taskTable{byGW: map[string]taskRef{}, byUp: map[taskRef]string{}}
	}
	return s.tasks
}

// add names the server's task with an id of the gateway's.
func (t *taskTable) add(ref taskRef) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.byUp[ref]; ok {
		return id
	}
	id := rand.Text()
	t.byGW[id], t.byUp[ref] = ref, id
	return id
}

func (t *taskTable) lookup(id string) (taskRef, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.byGW[id]
	return r, ok
}

// gwID is the gateway's id of server's task up, if the session has it.
func (t *taskTable) gwID(server, up string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byUp[taskRef{server, up}]
	return id, ok
}

func (t *taskTable) servers() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for r := range t.byUp {
		if !seen[r.server] {
			seen[r.server] = true
			out = append(out, r.server)
		}
	}
	return out
}

// peekBody reads up to maxTaskBody of r's body and puts it back whole;
// it reports the bytes read and whether that is all of it.
func peekBody(r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxTaskBody+1))
	whole := err == nil && len(b) <= maxTaskBody
	if whole {
		r.Body = io.NopCloser(bytes.NewReader(b))
	} else {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
	}
	return b, whole
}

// serveTask serves r if it is a request of the task path, and reports
// whether it did. Only a 2025-11-25 POST on a session can be one; the
// cost for any other request is a header read.
func (g *Gateway) serveTask(w http.ResponseWriter, r *http.Request, who Who) bool {
	if r.Method != http.MethodPost || r.Header.Get("MCP-Protocol-Version") != taskRevision {
		return false
	}
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		return false
	}
	body, whole := peekBody(r)
	if !whole || !bytes.Contains(body, []byte(`"task`)) {
		return false
	}
	var m rpcMessage
	if json.Unmarshal(body, &m) != nil || m.ID == nil {
		return false // a batch, a notification, or not JSON: the SDK's to answer
	}
	var call struct {
		Name string          `json:"name"`
		Task json.RawMessage `json:"task"`
	}
	if m.Method == "tools/call" {
		if json.Unmarshal(m.Params, &call) != nil || len(call.Task) == 0 || string(call.Task) == "null" {
			return false
		}
	} else if !taskMethods[m.Method] {
		return false
	}
	if rebound(r) {
		// The SDK's DNS rebinding guard, which this path does not pass:
		// the same refusal.
		http.Error(w, "Forbidden: invalid Host header "+strconv.Quote(r.Host), http.StatusForbidden)
		return true
	}
	s := g.sessionByID(sid)
	if s == nil || s.who.Agent != who.Agent {
		// As the SDK answers a session it does not know: another
		// agent's session is no session of this one's.
		http.Error(w, "session not found", http.StatusNotFound)
		return true
	}
	out := newTaskWriter(w, r, m.ID)
	ctx := context.WithValue(r.Context(), inboundKey{}, &inbound{parent: r.Header.Get(RequestHeader)})
	var res json.RawMessage
	var err error
	if m.Method == "tools/call" {
		res, err = s.taskCall(ctx, call.Name, m.Params, out)
	} else {
		res, err = s.taskMethod(ctx, m.Method, m.Params, out)
	}
	out.finish(res, err)
	return true
}

// rebound reports a request to a loopback listener whose Host is not a
// loopback name or address: a web page reaching the gateway through a
// name that resolves to 127.0.0.1 (DNS rebinding), which the SDK's
// handler refuses and so must the task path.
func rebound(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !loopbackHost(local.String()) {
		return false
	}
	return !loopbackHost(r.Host)
}

// loopbackHost reports a host (with or without a port) that is
// "localhost" or a loopback address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// taskCall sends a task-augmented tools/call to the server its name
// routes to and answers the client with the task under the gateway's id.
func (s *session) taskCall(ctx context.Context, name string, params json.RawMessage, out *taskWriter) (json.RawMessage, error) {
	s.cat.ensure(ctx, kindOf["tools/call"], "tools/call")
	r, ok := s.cat.lookup(kindTools, name)
	if !ok {
		if r, ok = s.unlisted(name); !ok {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "agentg gateway: unknown tool " + strings.ToValidUTF8(name, "?")}
		}
	}
	params, ok = rewriteMember(params, "name", func(json.RawMessage) (json.RawMessage, bool) {
		b, err := json.Marshal(r.name)
		return b, err == nil
	})
	if !ok {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "agentg gateway: tools/call params are not an object"}
	}
	t := s.taskTable()
	res, err := s.rawCall(ctx, r.server, "tools/call", params, out.peer(s, t, r.server, true))
	if err != nil {
		return nil, upstreamError(r.server, err)
	}
	// The CreateTaskResult's task, under the gateway's id. A server that
	// ran the call without a task answered its result: passed as it is.
	res, _ = rewriteMember(res, "task", func(task json.RawMessage) (json.RawMessage, bool) {
		return rewriteTaskID(task, func(up string) (string, bool) { return t.add(taskRef{r.server, up}), true })
	})
	return res, nil
}

// errNoTask is the spec's answer to a task id the receiver does not
// have.
var errNoTask = &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "Failed to retrieve task: Task not found"}

// taskMethod serves tasks/get, tasks/result, tasks/cancel and tasks/list.
func (s *session) taskMethod(ctx context.Context, method string, params json.RawMessage, out *taskWriter) (json.RawMessage, error) {
	t := s.taskTable()
	if method == "tasks/list" {
		return s.listTasks(ctx, t, params, out)
	}
	var ref taskRef
	params, ok := rewriteTaskID(params, func(id string) (string, bool) {
		var found bool
		ref, found = t.lookup(id)
		return ref.id, found
	})
	if !ok {
		return nil, errNoTask
	}
	res, err := s.rawCall(ctx, ref.server, method, params, out.peer(s, t, ref.server, false))
	if err != nil {
		return nil, upstreamError(ref.server, err)
	}
	back := func(up string) (string, bool) { return t.gwID(ref.server, up) }
	if method == "tasks/result" {
		// The underlying request's result, its _meta naming the task.
		res, _ = rewriteRelated(res, back)
		return res, nil
	}
	// tasks/get and tasks/cancel answer the task itself.
	if nres, ok := rewriteTaskID(res, back); ok {
		res = nres
	}
	return res, nil
}

// listTasks lists the session's tasks: every server it created tasks
// on is asked (every page), and only the session's own tasks are
// listed, under the gateway's ids. It is one page.
func (s *session) listTasks(ctx context.Context, t *taskTable, params json.RawMessage, out *taskWriter) (json.RawMessage, error) {
	var p struct {
		Cursor string `json:"cursor"`
	}
	if len(params) > 0 && string(params) != "null" {
		if json.Unmarshal(params, &p) != nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "agentg gateway: tasks/list params are not an object"}
		}
	}
	if p.Cursor != "" {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "agentg gateway: invalid cursor (the gateway lists tasks in one page)"}
	}
	tasks := []json.RawMessage{}
	for _, server := range t.servers() {
		cursor := ""
		for range 100 { // pages: bounded, a server's cursor could loop
			q := json.RawMessage(`{}`)
			if cursor != "" {
				q, _ = json.Marshal(map[string]string{"cursor": cursor})
			}
			res, err := s.rawCall(ctx, server, "tasks/list", q, out.peer(s, t, server, false))
			if err != nil {
				s.g.unavailable(s.who, server, "tasks/list", err)
				break
			}
			var page struct {
				Tasks      []json.RawMessage `json:"tasks"`
				NextCursor string            `json:"nextCursor"`
			}
			if err := json.Unmarshal(res, &page); err != nil {
				s.g.unavailable(s.who, server, "tasks/list", err)
				break
			}
			for _, task := range page.Tasks {
				if mine, ok := rewriteTaskID(task, func(up string) (string, bool) { return t.gwID(server, up) }); ok {
					tasks = append(tasks, mine)
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
	}
	return json.Marshal(map[string]any{"tasks": tasks})
}

// taskWriter answers one client request of the task path: in JSON, or,
// once a notification is to go first (and the client takes a stream),
// as an event stream.
type taskWriter struct {
	w      http.ResponseWriter
	id     json.RawMessage
	stream bool // the client accepts text/event-stream
	mu     sync.Mutex
	open   bool // the stream's head is written
}

func newTaskWriter(w http.ResponseWriter, r *http.Request, id json.RawMessage) *taskWriter {
	return &taskWriter{w: w, id: id, stream: strings.Contains(r.Header.Get("Accept"), "text/event-stream")}
}

// peer is what the task path does with what server sends on a task
// request's stream: notifications and requests for input.
func (o *taskWriter) peer(s *session, t *taskTable, server string, creating bool) taskPeer {
	return taskPeer{notify: o.notifier(t, server, creating), serve: s.taskInput(t, server)}
}

// taskInput serves a request server sent on a task's stream: the client
// session is asked (the SDK's server sends it on the client's stream),
// the task named by the gateway's id.
func (s *session) taskInput(t *taskTable, server string) func(context.Context, rpcMessage) (json.RawMessage, error) {
	return func(ctx context.Context, m rpcMessage) (json.RawMessage, error) {
		ss := s.client()
		if ss == nil {
			return nil, errNoClient
		}
		params := m.Params
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{}`)
		}
		params, ok := rewriteRelated(params, func(up string) (string, bool) { return t.gwID(server, up) })
		if !ok {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "agentg gateway: a request about a task of no session of the gateway's"}
		}
		var res any
		var err error
		switch m.Method {
		case "elicitation/create":
			var p sdk.ElicitParams
			if err = json.Unmarshal(params, &p); err == nil {
				res, err = ss.Elicit(ctx, &p)
			}
		case "sampling/createMessage":
			var p sdk.CreateMessageParams
			if err = json.Unmarshal(params, &p); err == nil {
				res, err = ss.CreateMessage(ctx, &p)
			}
		case "roots/list":
			var p sdk.ListRootsParams
			if err = json.Unmarshal(params, &p); err == nil {
				res, err = ss.ListRoots(ctx, &p)
			}
		default:
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "agentg gateway: " + m.Method + " is not passed to the client"}
		}
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	}
}

// notifier passes a server's notifications on the request's stream to
// the client: notifications/tasks/status of a task of the session (or,
// when created, of the one the call creates) under the gateway's id, and
// progress as it is (the client's own token: the upstream session is
// this client session's alone). Others are not passed.
func (o *taskWriter) notifier(t *taskTable, server string, creating bool) func(rpcMessage) {
	return func(m rpcMessage) {
		switch m.Method {
		case "notifications/tasks/status":
			p, ok := rewriteTaskID(m.Params, func(up string) (string, bool) {
				if creating {
					return t.add(taskRef{server, up}), true
				}
				return t.gwID(server, up)
			})
			if !ok {
				return
			}
			if p, ok = rewriteRelated(p, func(up string) (string, bool) { return t.gwID(server, up) }); !ok {
				return
			}
			m.Params = p
		case "notifications/progress":
		default:
			return
		}
		m.JSONRPC, m.ID = "2.0", nil
		o.event(m)
	}
}

func (o *taskWriter) event(m rpcMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.stream {
		return // a JSON answer carries the result alone
	}
	if !o.open {
		o.w.Header().Set("Content-Type", "text/event-stream")
		o.w.Header().Set("Cache-Control", "no-cache")
		o.w.WriteHeader(http.StatusOK)
		o.open = true
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	wire.WriteEvent(o.w, wire.MessageEvent(b))
	http.NewResponseController(o.w).Flush()
}

// finish answers the request: its result, or its error as JSON-RPC.
func (o *taskWriter) finish(res json.RawMessage, err error) {
	m := rpcMessage{JSONRPC: "2.0", ID: o.id, Result: res}
	if err != nil {
		var je *jsonrpc.Error
		if !errors.As(err, &je) {
			je = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
		}
		m.Result, m.Error = nil, je
	}
	o.mu.Lock()
	open := o.open
	o.mu.Unlock()
	if open {
		o.event(m)
		return
	}
	b, merr := json.Marshal(m)
	if merr != nil {
		http.Error(o.w, "agentg gateway: "+merr.Error(), http.StatusInternalServerError)
		return
	}
	o.w.Header().Set("Content-Type", "application/json")
	o.w.WriteHeader(http.StatusOK)
	o.w.Write(b)
}
