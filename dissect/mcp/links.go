package mcp

import (
	"bytes"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
	store "github.com/agentg/agentg/state"
)

// Requests that refer back to an earlier one, in another exchange:
//   - 2025-11-25 tasks: a task-augmented tools/call is answered with a
//     task handle, and the tool's result comes later, to a tasks/result
//     that names only the task. The guard links the task id to the tool
//     when it sees the handle, so the result gets that tool's result
//     redactions; a result for a task it did not see created gets every
//     result redaction, as any tool's could.
//   - 2026-07-28 input_required: the server answers a call with the input
//     it needs, and the client retries the call, under a new id, with
//     inputResponses (and the requestState it was given). The retry is a
//     new request, decided again like any other; its event names the
//     first call's (retry_of), found by what the retry echoes: the
//     requestState, or else the keys of the input requests it answers.

// sawTask links the task a task-augmented call's answer names (a
// CreateTaskResult's task.taskId) to the call's tool.
func (g *Guard) sawTask(x *Exchange, c *call, task jsontext.Value) {
	id := ""
	if task != nil {
		id = wire.MemberString(task, "/taskId")
	}
	if id == "" || c.tool == "" {
		return
	}
	c.ev.MCP.Task = id
	err := g.State.PutLink(store.Link{Kind: store.LinkTask, Server: x.stateServer(), Key: id,
		Agent: c.ev.Agent, Method: c.m.Method, Tool: c.tool, EventID: c.ev.ID})
	if err != nil {
		// Its result will get every result redaction: safe, and said.
		c.ev.Error = "task " + id + " not remembered: " + err.Error()
	}
}

// followTask finds the tool whose task a tasks/result fetches.
func (ex *exchange) followTask(c *call) {
	id := c.m.TaskID
	c.ev.MCP.Task = id
	l, ok := ex.g.State.Link(store.LinkTask, ex.x.stateServer(), id)
	if id == "" || !ok {
		c.ev.Reason = "task " + id + " was not seen created: its result gets every result redaction"
		return
	}
	c.tool, c.ev.MCP.Tool = l.Tool, l.Tool
	c.ev.Reason = "result of the task created by request event " + l.EventID
}

// sawInputRequired remembers a call answered with input_required, so its
// retry names it.
func (g *Guard) sawInputRequired(x *Exchange, c *call, result jsontext.Value) {
	state := wire.MemberString(result, "/requestState")
	var keys []string
	if v, ok := wire.Lookup(result, "/inputRequests"); ok && v.Kind == wire.ValueObject {
		keys = memberNames(v.Raw)
	}
	first := c.ev.MCP.RetryOf // a retry answered with input_required again: the round trip's first call
	if first == "" {
		first = c.ev.ID
	}
	g.State.PutLink(store.Link{Kind: store.LinkRetry, Server: x.stateServer(),
		Key: retryKey(c.ev.Agent, c.m, state, keys), Agent: c.ev.Agent, Method: c.m.Method, Tool: c.tool, EventID: first})
}

// followRetry finds the first call a retry repeats.
func (ex *exchange) followRetry(c *call) {
	key := retryKey(ex.x.Agent, c.m, c.m.RequestState, memberNames(c.m.InputResponses))
	if l, ok := ex.g.State.Link(store.LinkRetry, ex.x.stateServer(), key); ok {
		c.ev.MCP.RetryOf = l.EventID
	}
}

// retryKey is what a retry and the answer it follows agree on: the agent,
// the method and what it names, and the requestState if there is one,
// else the input requests' keys.
func retryKey(agent string, m *wire.Message, state string, keys []string) string {
	name := m.Tool
	switch m.Method {
	case "prompts/get":
		name = m.Prompt
	case "resources/read":
		name = m.URI
	}
	var b strings.Builder
	for _, s := range []string{agent, m.Method, name} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	if state != "" {
		b.WriteString("state\x00")
		b.WriteString(state)
		return b.String()
	}
	slices.Sort(keys)
	b.WriteString("keys")
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
	}
	return b.String()
}

// memberNames lists an object's member names (decoded); nil for anything
// else.
func memberNames(v jsontext.Value) []string {
	if v.Kind() != '{' {
		return nil
	}
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := d.ReadToken(); err != nil {
		return nil
	}
	var out []string
	for d.PeekKind() == '"' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil
		}
		out = append(out, tok.String())
		if err := d.SkipValue(); err != nil {
			return nil
		}
	}
	return out
}
