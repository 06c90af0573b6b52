package test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// An answer the server replays on a resumed stream (GET with
// Last-Event-ID) must not carry a result past agentg unchecked: this one
// answers a call whose answer was already delivered, so agentg has no
// record to give it its tool's obligations (a result redaction here), and
// it is withheld. Before, such answers passed untouched.
func TestMCPResumedStreamAnswersChecked(t *testing.T) {
	policy := mcpPolicy(mcpBase + `  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [results]
      id: aws
`)
	e := newMCPEnv(t, policy, testenv.MCPServerConfig{Resumable: true}, testenv.MCPStateful)
	c := mcpCase{mode: testenv.MCPStateful, rev: "2025-11-25"}
	r := e.raw(t, c)
	ctx := mcpCtx(t)
	reply, err := r.Call(ctx, "5", "tools/call", map[string]any{"name": testenv.MCPToolSecret, "arguments": map[string]any{"parts": 1},
		"_meta": map[string]any{"progressToken": "p5"}})
	if err != nil {
		t.Fatal(err)
	}
	body := string(reply.Body)
	if strings.Contains(body, testenv.MCPSecret) || !strings.Contains(body, "[REDACTED:aws]") {
		t.Fatalf("the call's own answer was not redacted: %s", body)
	}
	first := firstEventID(body)
	if first == "" {
		t.Fatalf("the server's stream carries no event ids, so it cannot be resumed: %s", body)
	}

	// Resume the stream after its first event: the SDK replays the rest,
	// the answer to id 5 among it.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.peers[c.mode].URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", r.Session)
	req.Header.Set("MCP-Protocol-Version", c.rev)
	req.Header.Set("Last-Event-ID", first)
	resp, err := testenv.MCPHTTPClient(e.via("", "")).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := readUntil(t, resp, `"id":5`, 5*time.Second)
	if strings.Contains(got, testenv.MCPSecret) {
		t.Fatalf("a replayed answer carried the secret past agentg:\n%s", got)
	}
	if !strings.Contains(got, `"id":5`) || !strings.Contains(got, "builtin:mcp-unmatched") {
		t.Fatalf("the replayed answer to id 5 was not withheld with builtin:mcp-unmatched:\n%s", got)
	}
}

// firstEventID is the id of the first event of an SSE body.
func firstEventID(body string) string {
	for _, line := range strings.Split(body, "\n") {
		if id, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "id:"); ok {
			return strings.TrimSpace(id)
		}
	}
	return ""
}

// readUntil reads an event stream until it contains want (or the time is
// up), and returns what it read.
func readUntil(t *testing.T, resp *http.Response, want string, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	go func() { <-ctx.Done(); resp.Body.Close() }()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if strings.Contains(b.String(), want) {
			break
		}
	}
	return b.String()
}

// A call whose SSE answer is cut before the answer came is answered on
// the stream the client resumes (GET with Last-Event-ID), and that answer
// gets its tool's obligations there: agentg remembered the call when its
// stream opened.
func TestMCPCutStreamResumedAnswerRedacted(t *testing.T) {
	policy := mcpPolicy(mcpBase + `  redact:
    - pattern: "slow: done"
      in: [results]
      id: slow-done
`)
	e := newMCPEnv(t, policy, testenv.MCPServerConfig{Resumable: true}, testenv.MCPStateful)
	c := mcpCase{mode: testenv.MCPStateful, rev: "2025-11-25"}
	s := e.peers[c.mode]
	r := e.raw(t, c)
	hc := testenv.MCPHTTPClient(e.via("", ""))
	ctx := mcpCtx(t)

	post := func() (*http.Response, context.CancelFunc) {
		body := r.Request("9", "tools/call", map[string]any{"name": testenv.MCPToolSlow, "arguments": map[string]any{"steps": 1},
			"_meta": map[string]any{"progressToken": "p9"}})
		pctx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(pctx, http.MethodPost, s.URL, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", r.Session)
		req.Header.Set("MCP-Protocol-Version", c.rev)
		resp, err := hc.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return resp, cancel
	}
	resp, cancel := post()
	// Read up to the progress event (the tool now waits for Advance), note
	// its id, and cut the stream.
	lastID, err := testenv.NextEventID(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// Let the tool answer only once agentg has let go of the cut POST (it
	// writes the call's event then), so that agentg never reads the answer
	// there. The other order, an answer read on the POST's stream and lost
	// with it, is TestGuardKeepsRecordOfAnswerLostWithCutStream in
	// dissect/mcp.
	waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolSlow, "method": "tools/call"})
	if err := s.Advance(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", r.Session)
	req.Header.Set("MCP-Protocol-Version", c.rev)
	req.Header.Set("Last-Event-ID", lastID)
	g, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Body.Close()
	got := readUntil(t, g, `"id":9`, 10*time.Second)
	if strings.Contains(got, "slow: done") {
		t.Fatalf("the resumed answer passed unredacted:\n%s", got)
	}
	if !strings.Contains(got, `"id":9`) || !strings.Contains(got, "[REDACTED:slow-done]") {
		t.Fatalf("the resumed answer to id 9 was not matched and redacted:\n%s", got)
	}
}
