package otlp

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "http://127.0.0.1:4318", want: "http://127.0.0.1:4318/v1/traces"},
		{in: "http://127.0.0.1:4318/", want: "http://127.0.0.1:4318/v1/traces"},
		{in: "https://otel.example:443/custom/traces", want: "https://otel.example:443/custom/traces"},
		{in: "127.0.0.1:4318", err: "not a URL"},
		{in: "localhost:4318", err: "not a URL"},
		{in: "ftp://u:tok-secret@x", err: "credentials"},
		{in: "http://u:tok-secret@x:99999999999/%zz", err: "not a URL"},
		{in: "ftp://x", err: "scheme"},
		{in: "http://", err: "no host"},
		{in: "http://user:tok-secret@x:4318", err: "credentials"},
		{in: "http://x:4318/?k=v", err: "no query"},
	}
	for _, tc := range tests {
		got, err := ParseEndpoint(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok-secret") {
			t.Errorf("%q: the error shows the URL's password: %v", tc.in, err)
		}
	}
}

// Events logged become spans at a real OTLP/HTTP receiver, each where
// the linker put it, with the conventions' attributes.
func TestSinkExports(t *testing.T) {
	r := testenv.StartOTLPReceiver(false)
	defer r.Close()
	log := audit.New(&bytes.Buffer{})
	var ops syncBuf
	zl := zerolog.New(&ops)
	s, err := New(log, &zl, Config{Endpoint: r.Endpoint(), Headers: map[string]string{"Authorization": "Bearer otlp-tok-9f2e"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	log.Log(&audit.Event{ID: "o1", Parent: "t1", Kind: kindTunnelOpen, Time: t0})
	log.Log(&audit.Event{ID: "l1", Parent: "h1", Kind: "llm", Time: t0, Duration: 50 * time.Millisecond, Agent: "bot", Decision: "allow", Rule: "llm:default",
		Host: "api.openai.com", Port: 443, Method: "POST", Path: "/v1/chat/completions",
		LLM: &audit.LLM{Provider: "openai", Dialect: "openai-chat", Model: "gpt-4o", ServedModel: "gpt-4o-2024-08-06", Stream: true,
			InputTokens: 19, OutputTokens: 10, CachedTokens: 3, StopReason: "tool_calls", TTFT: 5 * time.Millisecond,
			ToolCalls: []audit.LLMToolCall{{Name: "get_weather"}}}})
	log.Log(&audit.Event{ID: "h1", Parent: "t1", Kind: "http", Time: t0, Duration: 60 * time.Millisecond, Method: "POST", Host: "api.openai.com",
		Port: 443, Path: "/v1/chat/completions", Status: 200, Decision: "allow", Rule: "h1", Agent: "bot", Client: "127.0.0.1:5555"})
	log.Log(&audit.Event{ID: "f1", CausedBy: "m1", Kind: "http", Time: t0, Method: "GET", Host: "api.egress.test", Decision: "deny", Rule: "mcp:egress files",
		Reason: "not on the egress list"})
	log.Log(&audit.Event{ID: "m1", Parent: "l1", Kind: "mcp", Time: t0, Method: "tools/call", Decision: "allow", Rule: "r",
		MCP: &audit.MCP{Server: "files", Tool: "fetch", Session: "sess-1", Revision: "2025-06-18", IsError: true}})
	s.Close()

	byName := map[string]testenv.Span{}
	for _, sp := range r.Spans() {
		byName[sp.Name] = sp
	}
	llm, http, tool, floor := byName["chat gpt-4o"], byName["POST"], byName["tools/call fetch"], byName["GET"]
	for name, sp := range map[string]testenv.Span{"chat gpt-4o": llm, "POST": http, "tools/call fetch": tool, "GET": floor} {
		if sp.SpanID == "" {
			t.Fatalf("no span %q among %v", name, r.Spans())
		}
	}
	if len(r.Spans()) != 4 {
		t.Errorf("%d spans, want 4 (the tunnel-open is no span)", len(r.Spans()))
	}
	hexOf := func(b []byte) string { return hex.EncodeToString(b) }
	sid := func(id string) string { x := spanOf(id); return hexOf(x[:]) }
	tid := func(id string) string { x := traceOf(id); return hexOf(x[:]) }
	for _, c := range []struct {
		sp             testenv.Span
		id, parent, tr string
	}{{http, "h1", "", "h1"}, {llm, "l1", "h1", "h1"}, {tool, "m1", "l1", "h1"}, {floor, "f1", "m1", "h1"}} {
		if c.sp.SpanID != sid(c.id) || c.sp.TraceID != tid(c.tr) {
			t.Errorf("%s: span %s trace %s, want %s %s", c.sp.Name, c.sp.SpanID, c.sp.TraceID, sid(c.id), tid(c.tr))
		}
		wantParent := ""
		if c.parent != "" {
			wantParent = sid(c.parent)
		}
		if c.sp.Parent != wantParent {
			t.Errorf("%s: parent %q, want %q", c.sp.Name, c.sp.Parent, wantParent)
		}
	}
	for k, v := range map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
		"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": int64(19), "gen_ai.usage.output_tokens": int64(10),
		"gen_ai.usage.cache_read.input_tokens": int64(3), "gen_ai.request.stream": true, "agentg.agent": "bot", "agentg.rule": "llm:default"} {
		if llm.Attrs[k] != v {
			t.Errorf("llm span %s = %#v, want %#v", k, llm.Attrs[k], v)
		}
	}
	if fr, _ := llm.Attrs["gen_ai.response.finish_reasons"].([]any); len(fr) != 1 || fr[0] != "tool_calls" {
		t.Errorf("finish_reasons %v", llm.Attrs["gen_ai.response.finish_reasons"])
	}
	if got := llm.End.Sub(llm.Start); got != 50*time.Millisecond {
		t.Errorf("llm span lasts %s, want the event's 50ms", got)
	}
	for k, v := range map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": "fetch", "mcp.session.id": "sess-1",
		"mcp.protocol.version": "2025-06-18", "gen_ai.operation.name": "execute_tool", "error.type": "tool_error"} {
		if tool.Attrs[k] != v {
			t.Errorf("tool span %s = %#v, want %#v", k, tool.Attrs[k], v)
		}
	}
	if floor.Attrs["error.type"] != errDenied || floor.Status != 2 || floor.Attrs["agentg.reason"] != "not on the egress list" {
		t.Errorf("denied request's span: %v status %v", floor.Attrs, floor.Status)
	}
	if http.Attrs["http.response.status_code"] != int64(200) || http.Attrs["client.address"] != "127.0.0.1" {
		t.Errorf("http span: %v", http.Attrs)
	}
	if http.Resource["service.name"] != "agentg" {
		t.Errorf("resource %v", http.Resource)
	}
	if s.Exported() != 4 || s.Dropped() != 0 {
		t.Errorf("exported %d dropped %d", s.Exported(), s.Dropped())
	}
	if strings.Contains(ops.String(), "otlp-tok-9f2e") {
		t.Errorf("the header's token is in the log: %s", ops.String())
	}
}

// A collector that never answers costs Log nothing: every event is
// logged at once while the export hangs, the queue's overflow and the
// hung batch are counted as dropped, and the failure is said once.
func TestSinkDeadCollector(t *testing.T) {
	r := testenv.StartOTLPReceiver(true)
	defer r.Close()
	log := audit.New(&bytes.Buffer{})
	var ops syncBuf
	zl := zerolog.New(&ops)
	s, err := New(log, &zl, Config{Endpoint: r.Endpoint(), Queue: 4, Timeout: 2 * time.Second,
		Headers: map[string]string{"Authorization": "Bearer otlp-tok-9f2e"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The first export starts within flushEvery and hangs.
	log.Log(&audit.Event{ID: "first", Kind: "http", Time: time.Now()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for r.Requests() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no export reached the receiver")
		case <-time.After(10 * time.Millisecond):
		}
	}
	start := time.Now()
	for i := range 100 {
		log.Log(&audit.Event{ID: "e" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Kind: "http", Time: time.Now()})
	}
	took := time.Since(start)
	if s.Dropped() < 100-4-1 {
		t.Fatalf("dropped %d with the export hung and a queue of 4, want at least 95", s.Dropped())
	}
	if took > time.Second {
		t.Fatalf("100 events took %s to log while the collector hung", took)
	}
	// The hung export times out: its span is lost too, and said.
	for !strings.Contains(ops.String(), "OTLP export failed") {
		select {
		case <-ctx.Done():
			t.Fatalf("the failed export was not said: %s", ops.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if strings.Contains(ops.String(), "otlp-tok-9f2e") {
		t.Errorf("the header's token is in the log: %s", ops.String())
	}
	if s.Exported() != 0 {
		t.Errorf("exported %d to a receiver that never answered", s.Exported())
	}
}

// Shutdown with a collector that never answers is bounded by
// closeTimeout, not by the (longer) export timeout.
func TestSinkCloseBounded(t *testing.T) {
	r := testenv.StartOTLPReceiver(true)
	defer r.Close()
	log := audit.New(&bytes.Buffer{})
	zl := zerolog.Nop()
	s, err := New(log, &zl, Config{Endpoint: r.Endpoint(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	log.Log(&audit.Event{ID: "a", Kind: "http", Time: time.Now()})
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > closeTimeout+3*time.Second {
		t.Fatalf("Close took %s with a hung collector", took)
	}
	if r.Requests() == 0 {
		t.Fatal("the queued event was not exported on Close")
	}
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d, want the one span the hung export lost", s.Dropped())
	}
}

// An endpoint that is one of agentg's own addresses is never connected
// to: the export fails, counted, and the receiver sees nothing.
func TestSinkRefusesOwnAddress(t *testing.T) {
	r := testenv.StartOTLPReceiver(false)
	defer r.Close()
	log := audit.New(&bytes.Buffer{})
	var ops syncBuf
	zl := zerolog.New(&ops)
	own := netip.MustParseAddrPort(r.Listener.Addr().String())
	s, err := New(log, &zl, Config{Endpoint: r.Endpoint(), Own: func(ap netip.AddrPort) bool { return ap == own }})
	if err != nil {
		t.Fatal(err)
	}
	log.Log(&audit.Event{ID: "a", Kind: "http", Time: time.Now()})
	s.Close()
	if r.Requests() != 0 || s.Exported() != 0 || s.Dropped() != 1 {
		t.Fatalf("receiver saw %d requests; exported %d, dropped %d", r.Requests(), s.Exported(), s.Dropped())
	}
	if !strings.Contains(ops.String(), "own addresses") {
		t.Fatalf("the refusal is not said: %s", ops.String())
	}
}

// Without Headers, the exporter takes them from OTEL_EXPORTER_OTLP_HEADERS
// (README, Traces): a token can stay off the command line.
func TestSinkHeadersFromEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20env-tok-77")
	r := testenv.StartOTLPReceiver(false)
	defer r.Close()
	log := audit.New(&bytes.Buffer{})
	zl := zerolog.Nop()
	s, err := New(log, &zl, Config{Endpoint: r.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	log.Log(&audit.Event{ID: "a", Kind: "http", Time: time.Now()})
	s.Close()
	if got := r.Header().Get("Authorization"); got != "Bearer env-tok-77" {
		t.Fatalf("Authorization %q", got)
	}
}
