package admin

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

const testToken = "test-token-0123456789abcdef"

type fixedPolicy struct{ e atomic.Pointer[rules.Engine] }

func (p *fixedPolicy) Engine() *rules.Engine { return p.e.Load() }

func newPolicy(t *testing.T, yaml string) *fixedPolicy {
	t.Helper()
	e, err := rules.Parse("p.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p := &fixedPolicy{}
	p.e.Store(e)
	return p
}

// testServer is an admin Server on a loopback port.
type testServer struct {
	*Server
	log    *audit.Logger
	addr   string
	client *Client
}

func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.Log == nil {
		cfg.Log = audit.New(io.Discard)
	}
	if cfg.Policy == nil {
		cfg.Policy = newPolicy(t, "default: allow\nhosts:\n  - deny: bad.example\n    id: no-bad\n")
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	c, err := NewClient(ln.Addr().String(), cfg.Token)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, log: cfg.Log, addr: ln.Addr().String(), client: c}
}

func (ts *testServer) request(t *testing.T, method, path, auth string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+ts.addr+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestTokenRequired(t *testing.T) {
	ts := startServer(t, Config{})
	paths := []string{"/metrics", "/v1/events", "/v1/rules", "/v1/mcp/inventory", "/v1/mcp/pins", "/nope"}
	bad := []string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic " + testToken, "Bearer " + testToken + "x", testToken, "Bearer " + testToken[:len(testToken)-1]}
	for _, p := range paths {
		for _, auth := range bad {
			code, h, body := ts.request(t, http.MethodGet, p, auth)
			if code != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) || h.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with %q: %d %q, want 401 with a JSON error and WWW-Authenticate", p, auth, code, body)
			}
		}
	}
	// The probes answer without the token (an orchestrator has none),
	// and say nothing but whether agentg lives and serves.
	for _, auth := range append([]string{"Bearer " + testToken, "bearer " + testToken}, bad...) {
		if code, _, body := ts.request(t, http.MethodGet, "/healthz", auth); code != 200 || strings.Join(strings.Fields(body), "") != `{"status":"ok"}` {
			t.Errorf("healthz with %q: %d %q", auth, code, body)
		}
	}
	code, _, body := ts.request(t, http.MethodGet, "/nope", "Bearer "+testToken)
	if code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("unknown path with the token: %d %q, want a JSON 404", code, body)
	}
	code, h, body := ts.request(t, http.MethodGet, "/v1/policy/reload", "Bearer "+testToken)
	if code != 405 || h.Get("Allow") != "POST" || !strings.Contains(body, `"method_not_allowed"`) {
		t.Errorf("GET reload: %d %v %q, want a JSON 405 allowing POST", code, h, body)
	}
}

func TestReadyz(t *testing.T) {
	ts := startServer(t, Config{})
	if code, _, _ := ts.request(t, http.MethodGet, "/readyz", "Bearer "+testToken); code != 503 {
		t.Errorf("readyz before SetReady: %d, want 503", code)
	}
	if code, _, body := ts.request(t, http.MethodGet, "/readyz", ""); code != 503 || !strings.Contains(body, "not_ready") {
		t.Errorf("readyz before SetReady, without the token: %d %q, want 503", code, body)
	}
	ts.SetReady(true)
	for _, auth := range []string{"Bearer " + testToken, ""} {
		if code, _, _ := ts.request(t, http.MethodGet, "/readyz", auth); code != 200 {
			t.Errorf("readyz when ready with %q: %d, want 200", auth, code)
		}
	}
}

func TestReload(t *testing.T) {
	var fail atomic.Bool
	var ts *testServer
	ts = startServer(t, Config{Reload: func() error {
		var err error
		if fail.Load() {
			err = errors.New("p.yaml:3: bad rule")
		}
		ts.ObserveReload(err)
		return err
	}})
	ctx := context.Background()
	if err := ts.client.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	fail.Store(true)
	err := ts.client.Reload(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 422 || ae.Code != "reload_failed" || !strings.Contains(ae.Message, "p.yaml:3") {
		t.Fatalf("failed reload: %v, want 422 reload_failed naming the file and line", err)
	}
	waitMetric(t, ts, "agentg_policy_reloads_total", nil, 2)
	waitMetric(t, ts, "agentg_policy_reload_failures_total", nil, 1)

	none := startServer(t, Config{})
	if err := none.client.Reload(ctx); !errors.As(err, &ae) || ae.Code != "no_policy_file" {
		t.Fatalf("reload without a policy file: %v, want no_policy_file", err)
	}
}

func TestMetricsFromEvents(t *testing.T) {
	tunnels := 3
	ts := startServer(t, Config{Gauges: Gauges{
		OpenTunnels: func() int { return tunnels },
		Leaves:      func() (uint64, uint64) { return 5, 7 },
	}, Policy: newPolicy(t, "default: allow\n")})
	l := ts.log
	l.Log(&audit.Event{Kind: "http", Decision: "deny", Rule: "no-bad", Duration: 3 * time.Millisecond, BytesDown: 10})
	l.Log(&audit.Event{Kind: "http", Decision: "deny", Rule: "no-bad"})
	l.Log(&audit.Event{Kind: "dns", Decision: "allow", Rule: "default"})
	l.Log(&audit.Event{Kind: "mcp", Method: "tools/call", Decision: "allow", Rule: "r", MCP: &audit.MCP{Server: "srv", Tool: "echo", Upstream: time.Millisecond, Redactions: []string{"secret"}}})
	// A hostile tool name (not UTF-8) is counted, never a panic.
	l.Log(&audit.Event{Kind: "mcp", Method: "tools/call", Decision: "deny", Rule: "r", MCP: &audit.MCP{Server: "srv", Tool: "\xff\xfe"}})

	waitMetric(t, ts, "agentg_decisions_total", map[string]string{"kind": "http", "decision": "deny", "rule": "no-bad"}, 2)
	waitMetric(t, ts, "agentg_dns_queries_total", map[string]string{"decision": "allow"}, 1)
	waitMetric(t, ts, "agentg_mcp_tool_calls_total", map[string]string{"server": "srv", "tool": "echo", "decision": "allow"}, 1)
	waitMetric(t, ts, "agentg_mcp_tool_calls_total", map[string]string{"server": "srv", "tool": "\ufffd", "decision": "deny"}, 1)
	waitMetric(t, ts, "agentg_mcp_redactions_total", map[string]string{"rule": "secret"}, 1)
	waitMetric(t, ts, "agentg_duration_seconds", map[string]string{"kind": "http"}, 1)
	waitMetric(t, ts, "agentg_mcp_upstream_duration_seconds", map[string]string{"server": "srv"}, 1)
	waitMetric(t, ts, "agentg_bytes_total", map[string]string{"kind": "http", "direction": "down"}, 10)
	waitMetric(t, ts, "agentg_open_tunnels", nil, 3)
	waitMetric(t, ts, "agentg_leaf_certificates_issued_total", nil, 5)
	waitMetric(t, ts, "agentg_leaf_cache_hits_total", nil, 7)

	rs, err := ts.client.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Items) == 0 || rs.Items[0].ID != "default" || rs.Items[0].Hits != 1 {
		t.Errorf("rules %+v: want default first with its one hit", rs.Items)
	}
	other := map[string]uint64{}
	for _, h := range rs.Other {
		other[h.ID] = h.Hits
	}
	if other["no-bad"] != 2 || other["r"] != 2 || other["secret"] != 1 {
		t.Errorf("hits of rules not in the policy %v, want no-bad 2, r 2, secret 1", other)
	}
}

// A client inventing tool names cannot grow the metrics without bound.
func TestMetricsBoundedLabels(t *testing.T) {
	m := newMetrics(Gauges{}, audit.New(io.Discard), func() int { return 0 }, func() uint64 { return 0 })
	for i := range maxSeries + 50 {
		m.observe(&audit.Event{Kind: "mcp", Method: "tools/call", Decision: "deny", MCP: &audit.MCP{Server: "s", Tool: "t" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)}}, "r")
	}
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "agentg_mcp_tool_calls_total" {
			if n := len(f.Metric); n > maxSeries+1 {
				t.Fatalf("%d tool series, want at most %d and one %q", n, maxSeries, other)
			}
			return
		}
	}
	t.Fatal("no tool call metric")
}

func TestEventStreamFiltered(t *testing.T) {
	ts := startServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opened := make(chan struct{})
	got := make(chan StreamEvent, 10)
	go ts.client.Events(ctx, EventsRequest{Follow: true, Filter: EventFilter{Agents: []string{"a1"}, Kinds: []string{"mcp", "http"}, Decisions: []string{"deny"}}},
		func() { close(opened) }, func(e StreamEvent) error { got <- e; return nil })
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("stream did not open")
	}
	ts.log.Log(&audit.Event{ID: "1", Kind: "mcp", Agent: "a1", Decision: "allow"})
	ts.log.Log(&audit.Event{ID: "2", Kind: "mcp", Agent: "a2", Decision: "deny"})
	ts.log.Log(&audit.Event{ID: "3", Kind: "dns", Agent: "a1", Decision: "deny"})
	ts.log.Log(&audit.Event{ID: "4", Kind: "mcp", Agent: "a1", Decision: "deny", MCP: &audit.MCP{Tool: "delete"}})
	select {
	case e := <-got:
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatalf("data %q: %v", e.Data, err)
		}
		if e.Type != "decision" || e.ID != "4" || m["id"] != "4" || m["tool"] != "delete" {
			t.Fatalf("first event %+v %v, want event 4 (the only one matching every filter), as logged", e, m)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
	code, _, body := ts.request(t, http.MethodGet, "/v1/events?colour=red", "Bearer "+testToken)
	if code != 400 || !strings.Contains(body, "colour") {
		t.Errorf("unknown filter: %d %q", code, body)
	}
	// A kind or decision no event has would match nothing, silently.
	for _, q := range []string{"kind=llm-tool", "kind=oauth,dns"} {
		if code, _, body := ts.request(t, http.MethodGet, "/v1/events?follow=false&"+q, "Bearer "+testToken); code != 200 {
			t.Errorf("%s: %d %q", q, code, body)
		}
	}
	for _, q := range []string{"kind=htpp", "kind=mcp,bogus", "decision=allowed"} {
		code, _, body := ts.request(t, http.MethodGet, "/v1/events?follow=false&"+q, "Bearer "+testToken)
		if code != 400 || !strings.Contains(body, "no event has it") {
			t.Errorf("%s: %d %q", q, code, body)
		}
	}
}

// last=N replays the newest events the filter picks, oldest first; with
// follow=false the stream ends there, else the live ones follow and an
// event is never sent twice.
func TestEventStreamLast(t *testing.T) {
	ts := startServer(t, Config{RecentEvents: 4})
	for i := range 6 {
		ts.log.Log(&audit.Event{ID: fmt.Sprint(i), Kind: "http", Agent: fmt.Sprintf("a%d", i%2), Decision: "allow"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// ids reads the stream req asks for; replayed runs once the replay
	// is in, and a following stream is left after one more event.
	ids := func(req EventsRequest, replayed func()) []string {
		t.Helper()
		var got []string
		err := ts.client.Events(ctx, req, nil, func(e StreamEvent) error {
			got = append(got, e.ID)
			switch {
			case len(got) == req.Last && replayed != nil:
				replayed()
			case req.Follow && len(got) == req.Last+1:
				return errDone
			}
			return nil
		})
		if err != nil && !errors.Is(err, errDone) {
			t.Fatalf("%+v: %v", req, err)
		}
		return got
	}
	// The ring is fed by the metrics' goroutine: wait for the sixth.
	for deadline := time.Now().Add(10 * time.Second); len(ts.recent.last(10, EventFilter{})) < 4 || ts.recent.last(1, EventFilter{})[0].ID != "5"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the recent events never held the last one logged")
		}
	}
	for _, c := range []struct {
		req  EventsRequest
		want string
	}{
		{EventsRequest{Last: 3}, "3 4 5"},
		{EventsRequest{Last: 4}, "2 3 4 5"}, // 0 and 1 fell off the ring
		{EventsRequest{Last: 4, Filter: EventFilter{Agents: []string{"a0"}}}, "2 4"},
		{EventsRequest{Last: 0}, ""},
	} {
		if got := strings.Join(ids(c.req, nil), " "); got != c.want {
			t.Errorf("%+v: %q, want %q", c.req, got, c.want)
		}
	}
	// Replayed, then live.
	got := ids(EventsRequest{Last: 2, Follow: true}, func() {
		ts.log.Log(&audit.Event{ID: "6", Kind: "http", Decision: "allow"})
	})
	if strings.Join(got, " ") != "4 5 6" {
		t.Errorf("replay then follow: %q, want 4 5 6", got)
	}
	for _, q := range []string{"last=5", "last=-1", "last=x", "follow=maybe"} {
		if code, _, body := ts.request(t, http.MethodGet, "/v1/events?"+q, "Bearer "+testToken); code != 400 {
			t.Errorf("%s: %d %q", q, code, body)
		}
	}
}

var errDone = errors.New("done")

// A stream that is not read loses events and is told how many.
func TestEventStreamDrops(t *testing.T) {
	ts := startServer(t, Config{StreamBuffer: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opened := make(chan struct{})
	release := make(chan struct{})
	var dropped atomic.Uint64
	go ts.client.Events(ctx, EventsRequest{Follow: true}, func() { close(opened) }, func(e StreamEvent) error {
		<-release
		if e.Type == "dropped" {
			dropped.Store(e.Dropped)
		}
		return nil
	})
	<-opened
	for range 5000 {
		ts.log.Log(&audit.Event{Kind: "http", Decision: "allow", Path: strings.Repeat("x", 512)})
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for dropped.Load() == 0 && time.Now().Before(deadline) {
		ts.log.Log(&audit.Event{Kind: "http"})
		time.Sleep(10 * time.Millisecond)
	}
	if dropped.Load() == 0 {
		t.Fatal("the stream never said it dropped events")
	}
}

func TestStreamsCapped(t *testing.T) {
	ts := startServer(t, Config{MaxStreams: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opened := make(chan struct{})
	go ts.client.Events(ctx, EventsRequest{Follow: true}, func() { close(opened) }, func(StreamEvent) error { return nil })
	<-opened
	err := ts.client.Events(ctx, EventsRequest{Follow: true}, nil, func(StreamEvent) error { return nil })
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 {
		t.Fatalf("second stream: %v, want 503", err)
	}
}

func TestPins(t *testing.T) {
	st, err := state.NewMemory(state.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h1, h2 := state.Hash(sha256.Sum256([]byte("a"))), state.Hash(sha256.Sum256([]byte("b")))
	st.CheckPin("srv", "tool", h1)
	if r := st.CheckPin("srv", "tool", h2); r != state.PinChanged {
		t.Fatalf("pin %v, want changed", r)
	}
	st.ObserveServer(state.ServerSighting{Server: "srv", URL: "https://mcp.test/mcp"})
	ts := startServer(t, Config{MCP: st})
	ctx := context.Background()
	pins, err := ts.client.Pins(ctx)
	if err != nil || len(pins) != 1 || pins[0].Accepted {
		t.Fatalf("pins %+v %v, want the one changed pin", pins, err)
	}
	inv, err := ts.client.Inventory(ctx)
	if err != nil || len(inv.Servers) != 1 || inv.Servers[0].Name != "srv" {
		t.Fatalf("inventory %+v %v", inv, err)
	}
	p, err := ts.client.AcceptPin(ctx, "srv", "tool")
	if err != nil || !p.Accepted || p.Hash != h2 {
		t.Fatalf("accept: %+v %v", p, err)
	}
	if r := st.CheckPin("srv", "tool", h2); r != state.PinChangedAccepted {
		t.Fatalf("after accepting through the API the store says %v", r)
	}
	var ae *APIError
	if _, err := ts.client.AcceptPin(ctx, "srv", "tool"); !errors.As(err, &ae) || ae.Code != "nothing_to_accept" {
		t.Errorf("accepting twice: %v", err)
	}
	if _, err := ts.client.AcceptPin(ctx, "srv", "nope"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("accepting an unknown pin: %v", err)
	}
	for _, body := range []string{`{"server":"srv","tool":"tool","x":1}`, `{"server":"srv"}{}`, `nope`, `{"tool":"t"}`} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ts.addr+"/v1/mcp/pins/accept", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("accept body %s: %d, want 400", body, resp.StatusCode)
		}
	}
	noState := startServer(t, Config{})
	if _, err := noState.client.Pins(ctx); !errors.As(err, &ae) || ae.Status != 503 {
		t.Errorf("pins without MCP state: %v", err)
	}
}

func TestClientNotRunning(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c, _ := NewClient(addr, testToken)
	if _, err := c.Pins(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("nothing listening: %v, want ErrNotRunning", err)
	}
	c, _ = NewClient("unix:"+t.TempDir()+"/none.sock", testToken)
	if _, err := c.Pins(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no socket: %v, want ErrNotRunning", err)
	}
}

// waitMetric waits until the metric with labels (a subset) reads want: a
// counter's or gauge's value, a histogram's sample count.
func waitMetric(t *testing.T, ts *testServer, name string, labels map[string]string, want float64) {
	t.Helper()
	var got float64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		got = scrape(t, ts.addr, testToken, name, labels)
		if got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
}

// scrape reads one metric from /metrics with the Prometheus text parser.
func scrape(t *testing.T, addr, token, name string, labels map[string]string) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return sum(fams[name], labels)
}

func sum(f *dto.MetricFamily, labels map[string]string) float64 {
	if f == nil {
		return -1
	}
	var total float64
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for k, v := range labels {
			ok = ok && have[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}
