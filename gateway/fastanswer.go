package gateway

// The fast path's answer (fastcall.go): the server's stream read until
// the call's response, resumed where the server closed it for polling,
// what the server sends the client meanwhile served as the session's SDK
// client would, and the answer framed as the SDK server frames it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// answer reads the upstream's answer until the response to upID, and
// returns it with the client's id in place. What the server sends the
// client on the call's stream meanwhile is served as the SDK client
// would (serverMessage).
func (t fastTarget) answer(ctx context.Context, resp *http.Response, body *io.ReadCloser, upID string, w http.ResponseWriter, clientID jsontext.Value) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode != http.StatusOK:
		// A JSON-RPC error in a refusal's body (the guard's, or the
		// server's) is the client's, as the SDK client surfaces it;
		// except on the statuses it reads as passing (429, 502-504).
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			if data, err := readBounded(resp.Body, wire.DefaultMaxMessage); err == nil {
				if out, ok := errorTo(data, clientID); ok {
					return out, nil
				}
			}
		}
		// Else what the SDK client says of it.
		return nil, fmt.Errorf("calling \"tools/call\": sending \"tools/call\": %s", http.StatusText(resp.StatusCode))
	case mt == "application/json":
		data, err := readBounded(resp.Body, wire.DefaultMaxMessage)
		if err != nil {
			return nil, fmt.Errorf("read the answer: %w", err)
		}
		if out, ok := responseTo(data, upID, clientID); ok {
			return out, nil
		}
		return nil, fmt.Errorf("the answer is not the call's response")
	case mt == "text/event-stream":
		sr := wire.NewSSEReader(resp.Body, 0)
		var lastID string
		retry, resumed := -1, 0
		for {
			ev, err := sr.Next()
			if err == io.EOF && lastID != "" && resumed < maxResume {
				// The server closed the call's stream for the client to
				// come back (SSE polling): resume it as the SDK client
				// does, after the retry it asked for.
				resumed++
				if err := sleepCtx(ctx, retryDelay(retry)); err != nil {
					return nil, err
				}
				rb, err := t.resume(ctx, lastID)
				if err != nil {
					return nil, fmt.Errorf("resume the stream: %w", err)
				}
				(*body).Close()
				*body = rb
				sr = wire.NewSSEReader(rb, 0)
				continue
			}
			if err != nil {
				if err == io.EOF {
					return nil, fmt.Errorf("the stream ended before the call's response")
				}
				return nil, fmt.Errorf("read the stream: %w", err)
			}
			if ev.HasID {
				lastID = ev.ID
			}
			if ev.Retry >= 0 {
				retry = ev.Retry
			}
			if !ev.HasData || wire.EventName(ev.Type) != "message" && ev.Type != "" {
				continue
			}
			if out, ok := responseTo([]byte(ev.Data), upID, clientID); ok {
				return out, nil
			}
			t.serverMessage(ctx, []byte(ev.Data), w)
		}
	}
	return nil, fmt.Errorf("the server answered %q", resp.Header.Get("Content-Type"))
}

// maxResume bounds the resumptions of one call's stream.
const maxResume = 100

// retryDelay is the wait before resuming: the server's retry field
// (milliseconds), else a second, as the SDK client waits.
func retryDelay(retry int) time.Duration {
	if retry < 0 {
		return time.Second
	}
	return time.Duration(retry) * time.Millisecond
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resume opens the call's stream again after lastID (GET with
// Last-Event-ID on the upstream session, through the guard).
func (t fastTarget) resume(ctx context.Context, lastID string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.tr.end.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", lastID)
	req.Header.Set("MCP-Protocol-Version", t.cs.InitializeResult().ProtocolVersion)
	req.Header.Set("Mcp-Session-Id", t.cs.ID())
	resp, err := t.tr.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("the server answered %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return resp.Body, nil
}

// responseTo is data with the client's id, when data is the response
// to upID.
func responseTo(data []byte, upID string, clientID jsontext.Value) ([]byte, bool) {
	b, err := wire.Parse(data, wire.Limits{})
	if err != nil || b.Batch || len(b.Messages) != 1 {
		return nil, false
	}
	m := b.Messages[0]
	if m.Kind != wire.KindResponse && m.Kind != wire.KindErrorResponse || m.IDKey() != wire.IDKey(jsontext.Value(strconv.Quote(upID))) {
		return nil, false
	}
	// m.ID and m.Raw are slices of data: the id's offset in Raw is the
	// difference of their capacities.
	at := cap(m.Raw) - cap(m.ID)
	if at < 0 || at+len(m.ID) > len(m.Raw) || !bytes.Equal(m.Raw[at:at+len(m.ID)], m.ID) {
		return nil, false
	}
	out := make([]byte, 0, len(m.Raw)-len(m.ID)+len(clientID))
	out = append(out, m.Raw[:at]...)
	out = append(out, clientID...)
	return append(out, m.Raw[at+len(m.ID):]...), true
}

// fastAnswer writes the call's answer (or err as the SDK server answers
// a handler's error: an internal error) as the SDK server frames it.
func (g *Gateway) fastAnswer(w http.ResponseWriter, id jsontext.Value, ans []byte, err error) {
	if err != nil {
		ans = wire.ErrorResponse(id, wire.CodeInternalError, err.Error(), nil)
	}
	fastHead(w)
	wire.WriteEvent(w, wire.MessageEvent(ans))
	http.NewResponseController(w).Flush()
}

// fastHead sets the SDK server's headers of a POST's event stream, once.
func fastHead(w http.ResponseWriter) {
	h := w.Header()
	if h.Get("Content-Type") != "" {
		return
	}
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Content-Type", "text/event-stream")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
}

// serverMessage serves a message the server sent on the call's stream
// before its response, as the session's SDK client would: a log message
// goes to the client on the call's stream, a list change reloads the
// catalogue, a request to the client (sampling, elicitation, roots) is
// asked of the client's session and its answer posted back.
func (t fastTarget) serverMessage(ctx context.Context, data []byte, w http.ResponseWriter) {
	b, err := wire.Parse(data, wire.Limits{})
	if err != nil || b.Batch || len(b.Messages) != 1 {
		return // the guard framed it: it parses; anything else is dropped as the SDK client would
	}
	m := b.Messages[0]
	switch m.Kind {
	case wire.KindNotification:
		switch m.Method {
		case "notifications/message":
			fastHead(w)
			wire.WriteEvent(w, wire.MessageEvent(data))
			http.NewResponseController(w).Flush()
		case "notifications/tools/list_changed":
			t.s.cat.changed(t.route.server, kindTools)
		case "notifications/prompts/list_changed":
			t.s.cat.changed(t.route.server, kindPrompts)
		case "notifications/resources/list_changed":
			t.s.cat.changed(t.route.server, kindResources)
		case "notifications/resources/updated":
			var p sdk.ResourceUpdatedNotificationParams
			if json.Unmarshal(m.Params, &p) == nil {
				t.s.srv.ResourceUpdated(ctx, &p)
			}
		}
	case wire.KindRequest:
		res, err := t.askClient(ctx, m)
		var out []byte
		if err != nil {
			out = wire.ErrorResponse(m.ID, wire.CodeInternalError, err.Error(), nil)
		} else {
			out = append(append(append([]byte(`{"jsonrpc":"2.0","id":`), m.ID...), `,"result":`...), res...)
			out = append(out, '}')
		}
		if resp, err := t.post(ctx, out); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// askClient asks the client's session what the server asked the
// gateway's client.
func (t fastTarget) askClient(ctx context.Context, m *wire.Message) ([]byte, error) {
	ss := t.s.client()
	if ss == nil {
		return nil, errNoClient
	}
	var (
		res any
		err error
	)
	switch m.Method {
	case "ping":
		return []byte("{}"), nil
	case "sampling/createMessage":
		var p sdk.CreateMessageParams
		if err = json.Unmarshal(m.Params, &p); err == nil {
			res, err = ss.CreateMessage(ctx, &p)
		}
	case "elicitation/create":
		var p sdk.ElicitParams
		if err = json.Unmarshal(m.Params, &p); err == nil {
			res, err = ss.Elicit(ctx, &p)
		}
	case "roots/list":
		var p sdk.ListRootsParams
		if len(m.Params) > 0 {
			err = json.Unmarshal(m.Params, &p)
		}
		if err == nil {
			res, err = ss.ListRoots(ctx, &p)
		}
	default:
		return nil, fmt.Errorf("agentg gateway: method %q is not served", m.Method)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// errorTo is the client's error response with the error data carries,
// when data is one JSON-RPC error response (to any id but null: the SDK
// client reads a refusal's body so).
func errorTo(data []byte, clientID jsontext.Value) ([]byte, bool) {
	b, err := wire.Parse(data, wire.Limits{})
	if err != nil || b.Batch || len(b.Messages) != 1 || b.Messages[0].Kind != wire.KindErrorResponse ||
		len(b.Messages[0].ID) == 0 || string(b.Messages[0].ID) == "null" {
		return nil, false // the SDK client decodes no response without an id
	}
	out := append([]byte(`{"jsonrpc":"2.0","id":`), clientID...)
	out = append(append(out, `,"error":`...), b.Messages[0].Error...)
	return append(out, '}'), true
}
