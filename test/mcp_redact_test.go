package test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// ghToken is a GitHub-shaped token the servers of the redaction tests
// return as their secret.
const ghToken = "ghp_0123456789abcdefghijABCDEFGHIJ012345"

// mcpRedact redacts AWS keys in arguments (on the way up) and GitHub
// tokens in results (on the way down).
const mcpRedact = mcpBase + `  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [arguments]
      id: aws-args
    - pattern: "ghp_[A-Za-z0-9]{36}"
      in: [results]
      id: gh-results
`

// Issue 7: arguments are rewritten before they go upstream, results
// before they reach the client, SSE event by event; the marker names the
// rule.
func TestMCPRedaction(t *testing.T) {
	for _, split := range []int{0, 5} {
		name := "whole writes"
		if split > 0 {
			name = "server writes cut every 5 bytes"
		}
		t.Run(name, func(t *testing.T) {
			e := newMCPEnv(t, mcpPolicy(mcpRedact), testenv.MCPServerConfig{Secret: ghToken, SplitWrites: split})
			for _, c := range mcpCases() {
				t.Run(c.String(), func(t *testing.T) { redactionCase(t, e, c) })
			}
			if strings.Contains(e.log.String(), testenv.MCPSecret) {
				t.Error("agentg's log holds the AWS key a rule redacts from arguments")
			}
		})
	}
}

func redactionCase(t *testing.T, e *mcpEnv, c mcpCase) {
	s := e.peers[c.mode]
	cl := e.connect(t, c, nil)
	const awsMark, ghMark = "[REDACTED:aws-args]", "[REDACTED:gh-results]"

	// Up: the server receives the marker, never the key.
	args := map[string]any{"text": "my key is " + testenv.MCPSecret + "!", "nested": map[string]any{"list": []any{testenv.MCPSecret, 3}}}
	res, err := callTool(t, cl, testenv.MCPToolEcho, args)
	if err != nil {
		t.Fatal(err)
	}
	got := string(s.LastArguments(testenv.MCPToolEcho))
	if strings.Contains(got, testenv.MCPSecret) || strings.Count(got, awsMark) != 2 {
		t.Fatalf("the server received arguments %s, want the key replaced by %s twice", got, awsMark)
	}
	if strings.Contains(resultText(res), testenv.MCPSecret) {
		t.Fatalf("the key came back: %q", resultText(res))
	}
	ev := waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolEcho, "decision": "allow"})
	if b, _ := json.Marshal(ev); !strings.Contains(string(b), "aws-args") {
		t.Errorf("the call's event does not say that aws-args fired: %s", b)
	}

	// Down: the client receives the marker in every text item and in
	// structuredContent. With a progress token the answer follows one
	// progress event per part.
	p := &mcp.CallToolParams{Name: testenv.MCPToolSecret, Arguments: map[string]any{"parts": 4}}
	p.SetProgressToken("secret-" + c.String())
	res, err = cl.CallTool(mcpCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := json.Marshal(res.StructuredContent)
	if text := resultText(res); strings.Contains(text, ghToken) || strings.Count(text, ghMark) != 4 {
		t.Fatalf("result text %q, want the token replaced by %s in each of 4 parts", text, ghMark)
	}
	if strings.Contains(string(sc), ghToken) || strings.Count(string(sc), ghMark) != 2 {
		t.Fatalf("structuredContent %s, want the token replaced twice", sc)
	}

	// A token in arguments is not redacted on the way up (the rule is for
	// results), but its echo is on the way down.
	args = map[string]any{"text": ghToken}
	res, err = callTool(t, cl, testenv.MCPToolEcho, args)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.LastArguments(testenv.MCPToolEcho)); !strings.Contains(got, ghToken) {
		t.Errorf("the server received %s: a results-only rule rewrote arguments", got)
	}
	if text := resultText(res); strings.Contains(text, ghToken) || !strings.Contains(text, ghMark) {
		t.Errorf("the echoed token came back as %q", text)
	}
}

// A compressed answer is decoded and dissected, or refused: a server that
// gzips whatever the client accepts must not carry a secret past the
// redaction.
func TestMCPRedactionCompressedAnswer(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpRedact), testenv.MCPServerConfig{Secret: ghToken, GzipResponses: true},
		testenv.MCPStateful, testenv.MCPStatefulJSON, testenv.MCPStateless)
	for _, c := range []mcpCase{{testenv.MCPStateful, "2025-11-25"}, {testenv.MCPStatefulJSON, "2025-06-18"}, {testenv.MCPStateless, "2026-07-28"}} {
		t.Run(c.String(), func(t *testing.T) {
			// The handshake's answers are gzip'd too: refusing them is
			// one of the two right outcomes.
			r := testenv.NewMCPRaw(testenv.MCPHTTPClient(e.via("", "")), c.mode, e.peers[c.mode].URL, c.rev)
			defer r.Close()
			if err := r.Open(mcpCtx(t)); err != nil {
				t.Logf("handshake through a gzipping server refused: %v", err)
				return
			}
			reply, err := r.Call(mcpCtx(t), `1`, "tools/call", map[string]any{"name": testenv.MCPToolSecret, "arguments": map[string]any{}})
			if err == nil && strings.Contains(string(reply.Body), ghToken) {
				t.Fatalf("the token passed in a gzip'd answer: %q", reply.Body)
			}
			if err == nil && reply.Header.Get("Content-Encoding") == "" && reply.Status == 200 {
				if text := wantRawResult(t, reply.ByID(`1`), `1`); !strings.Contains(text, "[REDACTED:gh-results]") {
					t.Fatalf("decoded answer %q, want the marker", text)
				}
			}
		})
	}
}

// Issue 7: a slow tool's events reach the client as the server sends
// them; the dissector never holds a stream back to read it whole. The
// tool waits for the test before each next step, so an agentg that
// buffered would starve the client and fail here.
func TestMCPStreamsEvents(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpRedact), testenv.MCPServerConfig{})
	cases := []mcpCase{
		{testenv.MCPStateful, "2025-03-26"}, {testenv.MCPStateful, "2025-11-25"},
		{testenv.MCPStatefulJSON, "2025-06-18"}, // progress on the GET stream
		{testenv.MCPStateless, "2026-07-28"}, {testenv.MCPLegacySSE, "2024-11-05"},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			progress := make(chan time.Time, 10)
			cl := e.connect(t, c, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, _ *mcp.ProgressNotificationClientRequest) {
				progress <- time.Now()
			}})
			p := &mcp.CallToolParams{Name: testenv.MCPToolSlow, Arguments: map[string]any{"steps": 3}}
			p.SetProgressToken(c.String())
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				res, err := cl.CallTool(mcpCtx(t), p)
				if err == nil && resultText(res) != "slow: done" {
					err = errors.New("slow answered " + resultText(res))
				}
				done <- err
			}()
			for step := 1; step <= 3; step++ {
				select {
				case at := <-progress:
					if step == 1 {
						t.Logf("first event after %v through agentg", at.Sub(start))
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("progress %d did not reach the client while the tool waited: agentg holds the stream back", step)
				}
				if err := s.Advance(5 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Issue 7: a call past a rate limit gets an error that says which limit
// and when to retry, and does not run.
func TestMCPRateLimit(t *testing.T) {
	policy := mcpPolicy(mcpBase + `  rate_limits:
    - tools: "srv.echo"
      limit: 2/m
      per: agent
      id: echo-rate
`)
	for _, c := range mcpCases() {
		t.Run(c.String(), func(t *testing.T) {
			e := newMCPEnv(t, policy, testenv.MCPServerConfig{}, c.mode) // buckets of its own
			s := e.peers[c.mode]
			cl := e.connect(t, c, nil)
			for i := range 2 {
				args := map[string]any{"i": i}
				res, err := callTool(t, cl, testenv.MCPToolEcho, args)
				wantEcho(t, res, err, args)
			}
			res, err := callTool(t, cl, testenv.MCPToolEcho, map[string]any{"i": 2})
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) {
				t.Fatalf("third call in a minute under 2/m: %v %+v, want a JSON-RPC error", err, res)
			}
			says := strings.ToLower(werr.Message + " " + string(werr.Data))
			if !strings.Contains(says, "echo-rate") && !strings.Contains(says, "2/m") {
				t.Errorf("rate-limit error %q %s does not say which limit", werr.Message, werr.Data)
			}
			if !strings.Contains(says, "retry") {
				t.Errorf("rate-limit error %q %s does not say when to retry", werr.Message, werr.Data)
			}
			if got := s.Calls(testenv.MCPToolEcho); got != 2 {
				t.Errorf("echo ran %d times, want 2", got)
			}
			// Another tool is not under that limit.
			args := map[string]any{"other": "tool"}
			res, err = callTool(t, cl, testenv.MCPToolDotted, args)
			wantEcho(t, res, err, args)
			ev := waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolEcho, "decision": "deny"})
			if b, _ := json.Marshal(ev); !strings.Contains(string(b), "echo-rate") {
				t.Errorf("the refused call's event does not name echo-rate: %s", b)
			}
		})
	}
}
