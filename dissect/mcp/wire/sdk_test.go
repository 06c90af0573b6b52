package wire

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Revisions the official Go SDK speaks, oldest first.
var revisions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}

// tap records every newline-delimited message written through it.
type tap struct {
	w    io.WriteCloser
	mu   *sync.Mutex
	msgs *[][]byte
	buf  []byte
}

func (t *tap) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	for {
		i := bytes.IndexByte(t.buf, '\n')
		if i < 0 {
			break
		}
		*t.msgs = append(*t.msgs, bytes.Clone(t.buf[:i]))
		t.buf = t.buf[i+1:]
	}
	t.mu.Unlock()
	return t.w.Write(p)
}

func (t *tap) Close() error { return t.w.Close() }

type greetIn struct {
	Name string `json:"name" jsonschema:"who to greet"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

// sdkServer is a real MCP server from the official SDK with a tool of
// each shape the codec reads: plain, annotated, with structured output.
func sdkServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "sdk-test", Version: "1.0.0"}, nil)
	yes := true
	mcp.AddTool(s, &mcp.Tool{Name: "greet", Description: "Greets someone."},
		func(_ context.Context, _ *mcp.CallToolRequest, in greetIn) (*mcp.CallToolResult, greetOut, error) {
			g := "hello " + in.Name + " AKIAABCDEFGHIJKLMNOP"
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: g}}}, greetOut{Greeting: g}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "db.drop", Description: "Drops a table.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: &yes, Title: "Drop"}},
		func(_ context.Context, _ *mcp.CallToolRequest, in struct {
			Table string `json:"table"`
		}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "dropped " + in.Table}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "Reports progress, then finishes."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			if token := req.Params.GetProgressToken(); token != nil {
				for i := range 3 {
					_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: float64(i), Total: 2, Message: "step\nby step"})
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "file:///notes/a.txt", Name: "a", MIMEType: "text/plain"},
		func(_ context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: r.Params.URI, MIMEType: "text/plain", Text: "key AKIAABCDEFGHIJKLMNOP"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "review", Arguments: []*mcp.PromptArgument{{Name: "code"}}},
		func(_ context.Context, r *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "review " + r.Params.Arguments["code"]}}}}, nil
		})
	return s
}

// sdkTranscript runs the SDK's client against its server at one revision
// over newline-delimited JSON and returns every message each side wrote.
func sdkTranscript(t testing.TB, rev string) (fromClient, fromServer [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	c2sR, c2sW := io.Pipe()
	s2cR, s2cW := io.Pipe()
	serverT := &mcp.IOTransport{Reader: c2sR, Writer: &tap{w: s2cW, mu: &mu, msgs: &fromServer}}
	clientT := &mcp.IOTransport{Reader: s2cR, Writer: &tap{w: c2sW, mu: &mu, msgs: &fromClient}}
	ss, err := sdkServer().Connect(ctx, serverT, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "sdk-client", Version: "1.0.0"}, nil).Connect(ctx, clientT, &mcp.ClientSessionOptions{ProtocolVersion: rev})
	if err != nil {
		t.Fatalf("%s: connect: %v", rev, err)
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("%s: tools/list: %v", rev, err)
	}
	for _, p := range []*mcp.CallToolParams{
		{Name: "greet", Arguments: map[string]any{"name": "Zoë \"the\" <admin>"}},
		{Name: "db.drop", Arguments: map[string]any{"table": "users"}},
	} {
		if _, err := cs.CallTool(ctx, p); err != nil {
			t.Fatalf("%s: tools/call %s: %v", rev, p.Name, err)
		}
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///notes/a.txt"}); err != nil {
		t.Fatalf("%s: resources/read: %v", rev, err)
	}
	if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "review", Arguments: map[string]string{"code": "x := 1"}}); err != nil {
		t.Fatalf("%s: prompts/get: %v", rev, err)
	}
	cs.Close()
	mu.Lock()
	defer mu.Unlock()
	return append([][]byte(nil), fromClient...), append([][]byte(nil), fromServer...)
}

// find returns the first message whose text contains every one of subs.
func find(msgs [][]byte, subs ...string) []byte {
	for _, m := range msgs {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(string(m), s)
		}
		if ok {
			return m
		}
	}
	return nil
}
