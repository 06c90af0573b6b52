package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/agentg/agentg/state"
)

// Client speaks to a running agentg's admin API; the CLI uses it.
type Client struct {
	addr  string // as NewClient was given it
	base  string // http://host:port, or http://agentg-admin over a unix socket
	token string
	hc    *http.Client // for requests with an answer
	sse   *http.Client // for the event stream: no overall timeout
}

// ErrNotRunning says nothing listens at the admin address: no agentg is
// serving there (the CLI then reads the data directory instead).
var ErrNotRunning = errors.New("no agentg admin API listens there")

// APIError is a request the admin API refused.
type APIError struct {
	Status        int
	Code, Message string // the answer's error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("admin API: %d %s: %s", e.Status, e.Code, e.Message)
}

// NewClient returns a client of the admin API at addr ("host:port" or
// "unix:/path"), sending token.
func NewClient(addr, token string) (*Client, error) {
	network, address, err := Network(addr)
	if err != nil {
		return nil, err
	}
	base := "http://" + address
	d := net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second}
	if network == "unix" {
		base = "http://agentg-admin"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", address)
		}
	} else {
		tr.DialContext = d.DialContext
	}
	return &Client{addr: addr, base: base, token: token,
		hc:  &http.Client{Transport: tr, Timeout: 30 * time.Second},
		sse: &http.Client{Transport: tr}}, nil
}

// Addr is the address the client asks, as NewClient was given it.
func (c *Client) Addr() string { return c.addr }

func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if rb, ok := body.(rawBody); ok {
		rd = bytes.NewReader(rb) // sent as it is (ingest.go)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		if notListening(err) {
			return nil, fmt.Errorf("%w (%s): %v", ErrNotRunning, c.base, err)
		}
		return nil, fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb errorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if json.Unmarshal(b, &eb) != nil || eb.Error.Code == "" {
			eb.Error = Error{Code: "http", Message: strings.TrimSpace(string(b))}
		}
		return nil, &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return resp, nil
}

// notListening: connection refused, or no socket file.
func notListening(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, c.hc, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("admin API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Probe is GET /healthz (ready false) or /readyz (ready true), which
// answer without the token: nil when agentg lives (and serves).
func (c *Client) Probe(ctx context.Context, ready bool) error {
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	var out map[string]string
	return c.call(ctx, http.MethodGet, path, nil, &out)
}

// Inventory is GET /v1/mcp/inventory.
func (c *Client) Inventory(ctx context.Context) (state.Inventory, error) {
	var inv state.Inventory
	err := c.call(ctx, http.MethodGet, "/v1/mcp/inventory", nil, &inv)
	return inv, err
}

// Pins is GET /v1/mcp/pins.
func (c *Client) Pins(ctx context.Context) ([]state.Pin, error) {
	var l List[state.Pin]
	err := c.call(ctx, http.MethodGet, "/v1/mcp/pins", nil, &l)
	return l.Items, err
}

// AcceptPin is POST /v1/mcp/pins/accept.
func (c *Client) AcceptPin(ctx context.Context, server, tool string) (state.Pin, error) {
	var p state.Pin
	err := c.call(ctx, http.MethodPost, "/v1/mcp/pins/accept", AcceptPin{Server: server, Tool: tool}, &p)
	return p, err
}

// Reload is POST /v1/policy/reload.
func (c *Client) Reload(ctx context.Context) error {
	var r ReloadResult
	return c.call(ctx, http.MethodPost, "/v1/policy/reload", struct{}{}, &r)
}

// Rules is GET /v1/rules.
func (c *Client) Rules(ctx context.Context) (RulesList, error) {
	var r RulesList
	err := c.call(ctx, http.MethodGet, "/v1/rules", nil, &r)
	return r, err
}

// StreamEvent is one event of the stream: Data is the audit event as
// logged (JSON); Dropped, on a "dropped" event, how many events the
// stream has missed so far.
type StreamEvent struct {
	Type    string // "decision" or "dropped"
	ID      string
	Data    json.RawMessage
	Dropped uint64
}

// Events reads GET /v1/events as req asks, calling opened once the stream
// is in place (every event from then on reaches it) and fn for each event,
// until ctx ends, fn fails, or the server ends the stream (which it does
// after the replay when req does not follow).
func (c *Client) Events(ctx context.Context, req EventsRequest, opened func(), fn func(StreamEvent) error) error {
	path := "/v1/events"
	if q := req.Query().Encode(); q != "" {
		path += "?" + q
	}
	resp, err := c.do(ctx, c.sse, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("admin API events: answer is %q, not an event stream", ct)
	}
	err = readSSE(resp.Body, opened, fn)
	switch {
	case err != io.EOF:
		return err
	case req.Follow:
		return io.ErrUnexpectedEOF // the server ended a live stream
	}
	return nil // the replay is all that was asked for
}

// readSSE reads Server-Sent Events as the stream writes them: fields
// "event", "id", "data" (one line each), comments, blank-line ends.
func readSSE(r io.Reader, opened func(), fn func(StreamEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev StreamEvent
	var data []byte
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first && strings.HasPrefix(line, ":") {
			first = false
			if opened != nil {
				opened()
			}
			continue
		}
		field, val, _ := strings.Cut(line, ":")
		val = strings.TrimPrefix(val, " ")
		switch field {
		case "":
			if line != "" {
				continue // a comment
			}
			if data == nil {
				continue
			}
			if ev.Type == "" {
				ev.Type = "message"
			}
			ev.Data = data
			if ev.Type == "dropped" {
				var d struct {
					Dropped uint64 `json:"dropped"`
				}
				json.Unmarshal(data, &d)
				ev.Dropped = d.Dropped
			}
			if err := fn(ev); err != nil {
				return err
			}
			ev, data = StreamEvent{}, nil
		case "event":
			ev.Type = val
		case "id":
			ev.ID = val
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, val...)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("admin API events: %w", err)
	}
	if data != nil || ev.Type != "" || ev.ID != "" {
		return io.ErrUnexpectedEOF // cut inside an event
	}
	return io.EOF
}
