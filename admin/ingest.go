package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// Events from a wrap. `agentg wrap` decides an agent's stdio MCP in its
// own process with its own guard; its events come here, one log line
// each (audit.JSON's form, newline-delimited), and are logged again as
// this agentg's own, so that the one log, the event stream and the
// metrics hold them too. The token is what proves the sender: a wrap
// reads it as the CLI does. Every event logged so carries door: wrap,
// whatever the line said, so nothing sent here passes for another door's
// decision. Where the wrap runs the policy from: GET /v1/policy/file
// names the running policy's file, which the wrap loads itself (no
// policy text, and so no inline secret, crosses the API).

// maxIngest bounds one POST of events; a wrap sends them in batches well
// under it.
const maxIngest = 4 << 20

// DoorWrap is the door of events a wrap sent.
const DoorWrap = "wrap"

func (s *Server) ingestRoutes() {
	s.route("/v1/events/ingest", http.MethodPost, s.serveIngest)
	s.route("/v1/policy/file", http.MethodGet, s.servePolicyFile)
	s.Handle("POST /v1/approvals/hold", http.HandlerFunc(s.serveHold))
}

func (s *Server) serveIngest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxIngest+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "reading the events: "+err.Error())
		return
	}
	if len(body) > maxIngest {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "more than "+strconv.Itoa(maxIngest)+" bytes of events in one request")
		return
	}
	// Every line is read before any is logged: a batch with a bad line
	// is refused whole, so a retry does not log the good ones twice.
	var evs []*audit.Event
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), maxIngest)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := audit.ParseJSON(line)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_event", fmt.Sprintf("line %d: %v", n, err))
			return
		}
		ev.Door = DoorWrap
		evs = append(evs, ev)
	}
	for _, ev := range evs {
		s.cfg.Log.Log(ev)
	}
	writeJSON(w, http.StatusOK, map[string]int{"logged": len(evs)})
}

// PolicyFile is GET /v1/policy/file's answer.
type PolicyFile struct {
	Path string `json:"path"`
}

func (s *Server) servePolicyFile(w http.ResponseWriter, r *http.Request) {
	files := s.cfg.Policy.Engine().Files()
	if len(files) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "the running agentg has no policy file (it runs the embedded default policy)")
		return
	}
	// Absolute, as this process reads it: a wrap runs elsewhere.
	path, err := filepath.Abs(files[0])
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "the policy file's path: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, PolicyFile{Path: path})
}

// IngestEvents sends log lines (audit.JSON's form, one per line) to the
// running agentg's log.
func (c *Client) IngestEvents(ctx context.Context, lines []byte) error {
	resp, err := c.do(ctx, c.hc, http.MethodPost, "/v1/events/ingest", rawBody(lines))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PolicyFile asks where the running agentg's policy is.
func (c *Client) PolicyFile(ctx context.Context) (PolicyFile, error) {
	var p PolicyFile
	err := c.call(ctx, http.MethodGet, "/v1/policy/file", nil, &p)
	return p, err
}

// rawBody is a request body sent as it is, not as JSON.
type rawBody []byte

// IngestWriter is the event sink of a wrap: an io.Writer for an
// audit.Logger whose lines it sends to the running agentg in batches (at
// most every FlushEvery, at once on Close). A batch the agentg refuses or
// cannot be reached for is reported to OnError, never silently lost.
type IngestWriter struct {
	c       *Client
	onError func(error)
	mu      sync.Mutex
	buf     []byte
	kick    chan struct{}
	done    chan struct{}
	stop    chan struct{}
}

// FlushEvery is how long an event waits in a wrap before it is sent.
const FlushEvery = 100 * time.Millisecond

// NewIngestWriter starts sending events to the agentg c asks; onError
// hears each batch that could not be delivered.
func NewIngestWriter(c *Client, onError func(error)) *IngestWriter {
	w := &IngestWriter{c: c, onError: onError, kick: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	go w.run()
	return w
}

// Write takes one log line (or several).
func (w *IngestWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	big := len(w.buf) > maxIngest/4
	w.mu.Unlock()
	if big {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (w *IngestWriter) run() {
	defer close(w.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.kick:
		case <-w.stop:
			w.flush()
			return
		}
		w.flush()
	}
}

func (w *IngestWriter) flush() {
	w.mu.Lock()
	b := w.buf
	w.buf = nil
	w.mu.Unlock()
	if len(b) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.IngestEvents(ctx, b); err != nil && w.onError != nil {
		w.onError(fmt.Errorf("%d event(s) not delivered to the agentg at %s: %w", bytes.Count(b, []byte{'\n'}), w.c.Addr(), err))
	}
}

// Close sends what is left and stops.
func (w *IngestWriter) Close() error {
	close(w.stop)
	<-w.done
	return nil
}

// Calls a wrap holds for approval. A wrap decides with its own guard and
// holds an approve rule's call in its own broker, which cannot be reached
// by an approver; RemoteApprovals puts each such hold to the running
// agentg (POST /v1/approvals/hold), where it is pending in the one
// broker that the console, the CLI and the webhook decide, and brings the
// outcome back. The hold there names the call's event (logged through
// ingest) as its parent.

// HoldOutcome is POST /v1/approvals/hold's answer.
type HoldOutcome struct {
	Approved bool   `json:"approved"`
	ID       string `json:"id,omitempty"` // the running agentg's approval id
	By       string `json:"by,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// holder is what of the broker the hold endpoint needs.
type holder interface {
	Begin(approval.Request) *approval.Ticket
}

func (s *Server) serveHold(w http.ResponseWriter, r *http.Request) {
	h, ok := s.cfg.Approvals.(holder)
	if !ok || h == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this agentg holds no approvals")
		return
	}
	var a approval.Approval
	if err := readJSON(r, &a); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	timeout := a.Expires.Sub(a.Created)
	if a.Kind != "mcp" || a.Tool == "" || timeout <= 0 || !slices.Contains(a.Via, "console") {
		writeError(w, http.StatusBadRequest, "bad_request", "a wrap's hold needs kind mcp, a tool, a timeout and console among its approvers")
		return
	}
	t := h.Begin(approval.Request{Kind: "mcp", Agent: a.Agent, Server: a.Server, Tool: a.Tool, Args: []byte(a.Args),
		Decision: rules.Decision{Action: rules.Approve, Rule: a.Rule, Reason: "held in agentg wrap",
			Hold: &rules.Hold{Timeout: timeout, Console: true}},
		Event: a.Event, Client: "wrap"})
	o := t.Wait(r.Context()) // a wrap that goes cancels its hold
	writeJSON(w, http.StatusOK, HoldOutcome{Approved: o.Approved, ID: o.Approval.ID, By: o.By, Reason: o.Reason})
}

// HoldApproval puts a wrap's held call to the running agentg and waits
// for its outcome (or ctx).
func (c *Client) HoldApproval(ctx context.Context, a approval.Approval) (HoldOutcome, error) {
	var o HoldOutcome
	resp, err := c.do(ctx, c.sse, http.MethodPost, "/v1/approvals/hold", a)
	if err != nil {
		return o, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&o); err != nil {
		return o, fmt.Errorf("admin API hold: decode answer: %w", err)
	}
	return o, nil
}

// RemoteApprovals is the approval.Notifier of a wrap's own broker: each
// call it holds is put to the running agentg, and its outcome decides the
// wrap's approval. Set Broker before the first hold; Close cancels the
// holds still out.
type RemoteApprovals struct {
	C       *Client
	Broker  *approval.Broker
	OnError func(error)

	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func (ra *RemoteApprovals) init() {
	ra.once.Do(func() { ra.ctx, ra.cancel = context.WithCancel(context.Background()) })
}

// Pending is told of each held call; it does not block.
func (ra *RemoteApprovals) Pending(a approval.Approval) {
	ra.init()
	if !slices.Contains(a.Via, "console") {
		return // only the client's user may decide it, in band; it waits for its timeout
	}
	go func() {
		ctx, cancel := context.WithDeadline(ra.ctx, a.Expires.Add(5*time.Second))
		defer cancel()
		o, err := ra.C.HoldApproval(ctx, a)
		switch {
		case err != nil:
			if ra.OnError != nil {
				ra.OnError(fmt.Errorf("approval %s could not be put to the agentg at %s: %w", a.ID, ra.C.Addr(), err))
			}
			ra.Broker.Deny(a.ID, "the running agentg could not be asked: "+err.Error(), "console")
		case o.Approved:
			ra.Broker.Approve(a.ID, approval.ScopeCall, 0, "console")
		default:
			ra.Broker.Deny(a.ID, o.Reason, "console")
		}
	}()
}

// Close cancels the holds still out.
func (ra *RemoteApprovals) Close() {
	ra.init()
	ra.cancel()
}
