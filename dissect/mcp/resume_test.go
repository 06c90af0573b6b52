package mcp

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// The race a cut stream opens: the client hangs up just as agentg reads
// the call's answer from the server on that stream. The answer never
// reaches the client, and the server replays it on the GET the client
// resumes with. The call's record must outlive the lost answer, so that
// the replay is matched and redacted, not withheld as unmatched.
//
// The guard is in front of the official Go SDK's server (resumable). Its
// forwarder here (forwardTo) keeps reading the server after the client
// has gone (the proxy's stops, but may already hold the answer), which
// makes the race certain: the tool answers only once the guard's request
// has seen the client go.
func TestGuardKeepsRecordOfAnswerLostWithCutStream(t *testing.T) {
	srv, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	policy := testPolicy + "  redact:\n    - pattern: \"slow: done\"\n      in: [results]\n      id: slow-done\n"
	eng, err := rules.Parse("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.NewMemory(store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var log bytes.Buffer
	g := &Guard{Log: audit.New(&log), State: st, Limits: limit.NewRates(limit.Options{})}

	upstream := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Addr)
	}}
	t.Cleanup(upstream.CloseIdleConnections)
	next := forwardTo(upstream, srv.URL)
	cut, postDone := make(chan struct{}), make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cut" {
			go func() { <-r.Context().Done(); close(cut) }()
			defer close(postDone)
		}
		g.Serve(w, r, Exchange{Engine: eng, Server: "srv", Parent: "p", Host: "mcp.test", Upstream: next})
	}))
	t.Cleanup(front.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw := testenv.NewMCPRaw(&http.Client{}, testenv.MCPStateful, front.URL+"/mcp", "2025-11-25")
	t.Cleanup(raw.Close)
	if err := raw.Open(ctx); err != nil {
		t.Fatal(err)
	}

	// The call, on a connection that resets when the client lets go.
	resets := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				c.(*net.TCPConn).SetLinger(0)
			}
			return c, err
		}}}
	body := raw.Request("9", "tools/call", map[string]any{"name": testenv.MCPToolSlow, "arguments": map[string]any{"steps": 1},
		"_meta": map[string]any{"progressToken": "p9"}})
	pctx, hangUp := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(pctx, http.MethodPost, front.URL+"/cut", bytes.NewReader(body))
	setMCPHeaders(req.Header, raw)
	resp, err := resets.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lastID, err := testenv.NextEventID(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	hangUp()
	resp.Body.Close()
	<-cut // the guard's request has seen the client go
	if err := srv.Advance(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-postDone:
	case <-ctx.Done():
		t.Fatal("the guard did not finish the cut POST")
	}

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/mcp", nil)
	setMCPHeaders(req.Header, raw)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", lastID)
	get, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	var got strings.Builder
	sc := bufio.NewScanner(get.Body)
	for !strings.Contains(got.String(), `"id":9`) && sc.Scan() {
		got.WriteString(sc.Text() + "\n")
	}
	switch s := got.String(); {
	case strings.Contains(s, "slow: done"):
		t.Fatalf("the replayed answer passed unredacted:\n%s", s)
	case !strings.Contains(s, "[REDACTED:slow-done]"):
		t.Fatalf("the replayed answer to id 9 was not matched and redacted:\n%s", s)
	}
}

func setMCPHeaders(h http.Header, raw *testenv.MCPRaw) {
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	h.Set("Mcp-Session-Id", raw.Session)
	h.Set("MCP-Protocol-Version", raw.Revision)
}
