package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// MCPRaw is an MCP client that sends bytes a test chose, built from the
// specification's own examples, for what no SDK client sends: ids of a
// chosen JSON type, batches, malformed bodies, headers that disagree with
// the body. It does the handshake each revision needs (initialize on
// Streamable HTTP before 2026-07-28; the GET stream and its endpoint event
// on HTTP+SSE) and then posts whatever it is given.
type MCPRaw struct {
	HTTP     *http.Client
	Endpoint string // the MCP endpoint; for MCPLegacySSE, the SSE endpoint
	Mode     MCPMode
	Revision string
	Session  string // Mcp-Session-Id, once Open has initialized a stateful session

	opened  bool
	postURL *url.URL // legacy: where the endpoint event says to POST
	events  chan SSEEvent
	stream  io.Closer
	pending []json.RawMessage // legacy: stream messages read while awaiting another id
}

// MCPPost is one POST.
type MCPPost struct {
	// Path replaces the path of the URL posted to (the endpoint, or the
	// legacy endpoint event's URI, whose query stays); empty keeps it.
	Path string
	Body []byte
	// Header is set over the defaults (Content-Type, Accept, the session
	// and version headers the revision has); a key with no values deletes
	// the default. Bare sends only Header.
	Header http.Header
	Bare   bool
}

// MCPReply is what came back for a POST.
type MCPReply struct {
	Status int
	Header http.Header
	Body   []byte // the body as received (an SSE stream as text)
	// Messages are the JSON-RPC messages in the body: the object, the
	// elements of an array, or the data of each SSE event that has any.
	Messages []json.RawMessage
}

// ByID is the message of Messages whose id is exactly id (raw JSON: `1`
// and `"1"` differ), or nil.
func (r *MCPReply) ByID(id string) json.RawMessage {
	for _, m := range r.Messages {
		if MCPMessageID(m) == id {
			return m
		}
	}
	return nil
}

// NewMCPRaw is a raw client of endpoint, served in mode, speaking revision.
func NewMCPRaw(hc *http.Client, mode MCPMode, endpoint, revision string) *MCPRaw {
	return &MCPRaw{HTTP: hc, Endpoint: endpoint, Mode: mode, Revision: revision}
}

// Open does the handshake the revision needs: nothing for 2026-07-28;
// initialize and notifications/initialized for a stateful session; for
// HTTP+SSE, the GET stream first.
func (c *MCPRaw) Open(ctx context.Context) error {
	if c.Revision >= "2026-07-28" {
		c.opened = true
		return nil
	}
	if c.Mode == MCPLegacySSE {
		if err := c.openStream(ctx); err != nil {
			return err
		}
	}
	init := fmt.Sprintf(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"agentg-raw-client","version":"1.0.0"}}}`, c.Revision)
	r, err := c.Post(ctx, MCPPost{Body: []byte(init)})
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	msg := r.ByID(`"init"`)
	if c.Mode == MCPLegacySSE {
		if r.Status != http.StatusAccepted {
			return fmt.Errorf("initialize: POST answered %d %q, want 202", r.Status, r.Body)
		}
		if msg, err = c.Await(ctx, `"init"`); err != nil {
			return fmt.Errorf("initialize: %w", err)
		}
	}
	if msg == nil {
		return fmt.Errorf("initialize: no response in %d %q", r.Status, r.Body)
	}
	var res struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if err := json.Unmarshal(msg, &res); err != nil || res.Result.ProtocolVersion != c.Revision {
		return fmt.Errorf("initialize: asked for %s, got %s", c.Revision, msg)
	}
	c.Session = r.Header.Get("Mcp-Session-Id")
	c.opened = true
	r, err = c.Post(ctx, MCPPost{Body: []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)})
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	if r.Status != http.StatusAccepted {
		return fmt.Errorf("notifications/initialized: %d %q, want 202", r.Status, r.Body)
	}
	return nil
}

// Close ends the legacy GET stream, if any.
func (c *MCPRaw) Close() {
	if c.stream != nil {
		c.stream.Close()
	}
	c.HTTP.CloseIdleConnections()
}

// Headers are the headers a request for method (naming name, for
// tools/call, prompts/get and resources/read) carries in this revision:
// Mcp-Method and Mcp-Name from 2026-07-28 on.
func (c *MCPRaw) Headers(method, name string) http.Header {
	h := http.Header{}
	if c.Revision >= "2026-07-28" {
		h.Set("Mcp-Method", method)
		if name != "" {
			h.Set("Mcp-Name", name)
		}
	}
	return h
}

// Request is the body of a request: id is raw JSON (`1`, `"1"`), params
// an object; from 2026-07-28 on, the protocol version and client
// capabilities (none, unless params._meta gives them) go into
// params._meta.
func (c *MCPRaw) Request(id, method string, params map[string]any) []byte {
	if params == nil {
		params = map[string]any{}
	}
	if c.Revision >= "2026-07-28" {
		meta, _ := params["_meta"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		meta["io.modelcontextprotocol/protocolVersion"] = c.Revision
		if _, ok := meta["io.modelcontextprotocol/clientCapabilities"]; !ok {
			meta["io.modelcontextprotocol/clientCapabilities"] = map[string]any{} // a test may declare some
		}
		meta["io.modelcontextprotocol/clientInfo"] = map[string]any{"name": "agentg-raw-client", "version": "1.0.0"}
		params["_meta"] = meta
	}
	p, err := json.Marshal(params)
	if err != nil {
		panic(fmt.Sprintf("raw MCP request params: %v", err)) // a test's own literal
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":%q,"params":%s}`, id, method, p)
}

// Call posts a request with the headers its revision wants.
func (c *MCPRaw) Call(ctx context.Context, id, method string, params map[string]any) (*MCPReply, error) {
	name, _ := params["name"].(string)
	if method == "resources/read" {
		name, _ = params["uri"].(string)
	}
	return c.Post(ctx, MCPPost{Body: c.Request(id, method, params), Header: c.Headers(method, name)})
}

// Post sends one POST and reads the whole answer.
func (c *MCPRaw) Post(ctx context.Context, p MCPPost) (*MCPReply, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, err
	}
	if c.postURL != nil {
		cp := *c.postURL
		u = &cp
	}
	if p.Path != "" {
		u.Path, u.RawPath = p.Path, ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(p.Body))
	if err != nil {
		return nil, err
	}
	if !p.Bare {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if c.opened && c.Revision >= "2025-06-18" {
			req.Header.Set("MCP-Protocol-Version", c.Revision)
		}
		if c.Session != "" {
			req.Header.Set("Mcp-Session-Id", c.Session)
		}
	}
	for k, vs := range p.Header {
		if len(vs) == 0 {
			req.Header.Del(k)
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer (%d so far: %q): %w", len(body), body, err)
	}
	return &MCPReply{Status: resp.StatusCode, Header: resp.Header, Body: body, Messages: MCPMessages(resp.Header.Get("Content-Type"), body)}, nil
}

// MCPMessages are the JSON-RPC messages in a body of contentType: the
// data of each SSE event that has any, the elements of a JSON array, or
// the one JSON object.
func MCPMessages(contentType string, body []byte) []json.RawMessage {
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "text/event-stream" {
		var out []json.RawMessage
		br := bufio.NewReader(bytes.NewReader(body))
		for {
			ev, err := ReadSSE(br)
			if err != nil {
				return out
			}
			if strings.TrimSpace(ev.Data) != "" {
				out = append(out, json.RawMessage(ev.Data))
			}
		}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	switch trimmed[0] {
	case '[':
		var arr []json.RawMessage
		if json.Unmarshal(trimmed, &arr) == nil {
			return arr
		}
	case '{':
		if json.Valid(trimmed) {
			return []json.RawMessage{json.RawMessage(trimmed)}
		}
	}
	return nil
}

// openStream opens the legacy GET stream and reads its endpoint event.
func (c *MCPRaw) openStream(ctx context.Context) error {
	// The stream outlives ctx (a test's handshake deadline): Close ends it.
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, c.Endpoint, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("open SSE stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return fmt.Errorf("open SSE stream: %d %q", resp.StatusCode, b)
	}
	c.stream = resp.Body
	c.events = make(chan SSEEvent, 100)
	go func() {
		defer close(c.events)
		br := bufio.NewReader(resp.Body)
		for {
			ev, err := ReadSSE(br)
			if err != nil {
				return
			}
			c.events <- ev
		}
	}()
	select {
	case ev, ok := <-c.events:
		if !ok || ev.Name != "endpoint" {
			return fmt.Errorf("open SSE stream: first event %+v, want endpoint", ev)
		}
		base, _ := url.Parse(c.Endpoint)
		if c.postURL, err = base.Parse(ev.Data); err != nil {
			return fmt.Errorf("open SSE stream: endpoint %q: %w", ev.Data, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("open SSE stream: no endpoint event: %w", ctx.Err())
	}
}

// Await reads the legacy GET stream until the message with id (raw JSON)
// arrives; messages with other ids are kept for later Awaits.
func (c *MCPRaw) Await(ctx context.Context, id string) (json.RawMessage, error) {
	for i, m := range c.pending {
		if MCPMessageID(m) == id {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return m, nil
		}
	}
	if c.events == nil {
		return nil, errors.New("await: no SSE stream")
	}
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return nil, fmt.Errorf("await %s: the SSE stream ended", id)
			}
			if strings.TrimSpace(ev.Data) == "" {
				continue
			}
			m := json.RawMessage(ev.Data)
			if MCPMessageID(m) == id {
				return m, nil
			}
			c.pending = append(c.pending, m)
		case <-ctx.Done():
			return nil, fmt.Errorf("await %s on the SSE stream: %w", id, ctx.Err())
		}
	}
}

// MCPMessageID is the id of a JSON-RPC message as compact raw JSON (`1`,
// `"1"`), or "" when it has none or is not an object.
func MCPMessageID(msg json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil {
		return ""
	}
	id, ok := m["id"]
	if !ok {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		return ""
	}
	return b.String()
}

// SSEEvent is one server-sent event.
type SSEEvent struct {
	Name, ID, Data, Retry string
}

// ReadSSE reads the next event (a test client's reader, after the
// WHATWG rules: lines end in CR, LF or CRLF, ':' starts a comment, data
// lines join with LF, one space after the colon is dropped). An event
// the stream ends inside is dropped, and io.EOF returned.
func ReadSSE(br *bufio.Reader) (SSEEvent, error) {
	var ev SSEEvent
	var data []string
	seen := false
	for {
		line, err := readSSELine(br)
		if err != nil {
			return SSEEvent{}, err
		}
		if line == "" {
			if !seen {
				continue
			}
			ev.Data = strings.Join(data, "\n")
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		seen = true
		switch field {
		case "event":
			ev.Name = value
		case "data":
			data = append(data, value)
		case "id":
			ev.ID = value
		case "retry":
			ev.Retry = value
		}
	}
}

func readSSELine(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		switch c {
		case '\n':
			return b.String(), nil
		case '\r':
			if next, err := br.Peek(1); err == nil && next[0] == '\n' {
				br.ReadByte()
			}
			return b.String(), nil
		}
		b.WriteByte(c)
	}
}

// NextEventID reads an event stream up to the next event id and returns
// it: where a client that cuts the stream there resumes (Last-Event-ID).
func NextEventID(br *bufio.Reader) (string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("the stream ended before an event id: %w", err)
		}
		if id, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "id:"); ok {
			return strings.TrimSpace(id), nil
		}
	}
}
