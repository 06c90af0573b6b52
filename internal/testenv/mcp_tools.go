package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tools every MCPServer serves. Each counts its runs (MCPServer.Calls)
// before doing anything else, so a test proves that a denied call never
// ran by the count alone.
const (
	// MCPToolEcho answers with its arguments: as the text of its one
	// content item and as structuredContent.
	MCPToolEcho = "echo"
	// MCPToolDelete is the destructive tool a policy denies by name; it
	// says destructiveHint: true, and echoes.
	MCPToolDelete = "delete_project"
	// MCPToolWipe says destructiveHint: true under a name no delete_* rule
	// matches, for annotation rules; it echoes.
	MCPToolWipe = "wipe_cache"
	// MCPToolArchive says destructiveHint: false explicitly; it echoes.
	MCPToolArchive = "archive"
	// MCPToolDotted has a dot in its name: on server srv it is
	// srv.files.read, server srv, tool files.read. It echoes.
	MCPToolDotted = "files.read"
	// MCPToolSecret answers with the server's secret: in {"parts": n}
	// text items (default 1) and in structuredContent; with a progress
	// token, after one notifications/progress per part.
	MCPToolSecret = "secret"
	// MCPToolSlow takes {"steps": n} steps (default 2): each sends a
	// notifications/progress (when the call carries a progress token) and
	// then waits for MCPServer.Advance; then it answers "slow: done".
	MCPToolSlow = "slow"
	// MCPToolMutable is the tool whose description MCPServer.SetDescription
	// changes; it echoes.
	MCPToolMutable = "mutable"
	// MCPToolBig answers with {"bytes": n} bytes of text.
	MCPToolBig = "big"
)

// MCPSecret is the default secret: AWS's documented example access key
// id, which a redaction rule for AKIA[0-9A-Z]{16} matches.
const MCPSecret = "AKIAIOSFODNN7EXAMPLE"

// MCPMutableDescription is the mutable tool's first description.
const MCPMutableDescription = "Reads the weather for a city."

// anyObject is the input schema of tools that take any arguments.
var anyObject = json.RawMessage(`{"type":"object"}`)

// mcpTools holds the tool definitions (so one can be replaced) and the
// run counters.
type mcpTools struct {
	srv    *mcp.Server
	secret string
	stepTO time.Duration
	step   chan struct{} // unbuffered: a send succeeds only while the slow tool waits

	mu    sync.Mutex
	defs  map[string]*mcp.Tool
	hands map[string]mcp.ToolHandler
	runs  map[string]int64
	args  map[string][]byte
}

func newMCPTools(srv *mcp.Server, cfg MCPServerConfig) *mcpTools {
	ts := &mcpTools{
		srv: srv, secret: cfg.Secret, stepTO: cfg.StepTimeout, step: make(chan struct{}),
		defs: map[string]*mcp.Tool{}, hands: map[string]mcp.ToolHandler{},
		runs: map[string]int64{}, args: map[string][]byte{},
	}
	yes, no := true, false
	ts.addEcho(&mcp.Tool{Name: MCPToolEcho, Description: "Echoes its arguments."})
	ts.addEcho(&mcp.Tool{Name: MCPToolDelete, Description: "Deletes a project and everything in it.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes}})
	ts.addEcho(&mcp.Tool{Name: MCPToolWipe, Description: "Wipes the cache.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes}})
	ts.addEcho(&mcp.Tool{Name: MCPToolArchive, Description: "Archives a project (undoably).",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &no}})
	ts.addEcho(&mcp.Tool{Name: MCPToolDotted, Description: "Reads a file."})
	ts.addEcho(&mcp.Tool{Name: MCPToolMutable, Description: MCPMutableDescription})
	ts.add(&mcp.Tool{Name: MCPToolSecret, Description: "Returns a secret.", InputSchema: anyObject}, ts.secretTool)
	ts.add(&mcp.Tool{Name: MCPToolSlow, Description: "Works in steps, reporting progress.", InputSchema: anyObject}, ts.slowTool)
	ts.add(&mcp.Tool{Name: MCPToolBig, Description: "Returns a large text.", InputSchema: anyObject}, ts.bigTool)
	for i := range cfg.Filler {
		ts.addEcho(&mcp.Tool{Name: fmt.Sprintf("filler_%03d", i), Description: "Filler for paging."})
	}
	return ts
}

func (ts *mcpTools) add(t *mcp.Tool, h mcp.ToolHandler) {
	ts.mu.Lock()
	ts.defs[t.Name], ts.hands[t.Name] = t, h
	ts.mu.Unlock()
	ts.srv.AddTool(t, h)
}

func (ts *mcpTools) addEcho(t *mcp.Tool) {
	if t.InputSchema == nil {
		t.InputSchema = anyObject
	}
	ts.add(t, ts.echo)
}

// ran counts a run of the request's tool and keeps its arguments.
func (ts *mcpTools) ran(req *mcp.CallToolRequest) []byte {
	args := []byte(req.Params.Arguments)
	if len(args) == 0 {
		args = []byte("{}")
	}
	ts.mu.Lock()
	ts.runs[req.Params.Name]++
	ts.args[req.Params.Name] = append([]byte(nil), args...)
	ts.mu.Unlock()
	return args
}

func (ts *mcpTools) calls(tool string) int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.runs[tool]
}

func (ts *mcpTools) lastArgs(tool string) []byte {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.args[tool]
}

func (ts *mcpTools) setDescription(tool, desc string) error {
	ts.mu.Lock()
	t, h := ts.defs[tool], ts.hands[tool]
	ts.mu.Unlock()
	if t == nil {
		return fmt.Errorf("set description: no tool %q", tool)
	}
	nt := *t
	nt.Description = desc
	ts.add(&nt, h)
	return nil
}

func (ts *mcpTools) echo(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := ts.ran(req)
	return &mcp.CallToolResult{
		Content:           []mcp.Content{&mcp.TextContent{Text: string(args)}},
		StructuredContent: json.RawMessage(args),
	}, nil
}

func (ts *mcpTools) secretTool(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in struct{ Parts int }
	json.Unmarshal(ts.ran(req), &in)
	// With a progress token the answer comes after one progress event per
	// part: on an SSE response, a stream of several events.
	if token := req.Params.GetProgressToken(); token != nil {
		for i := range max(in.Parts, 1) {
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token, Progress: float64(i + 1), Total: float64(max(in.Parts, 1)), Message: fmt.Sprintf("part %d", i)})
		}
	}
	res := &mcp.CallToolResult{StructuredContent: map[string]any{
		"secret": ts.secret,
		"nested": map[string]any{"list": []string{"before " + ts.secret + " after"}},
	}}
	for i := range max(in.Parts, 1) {
		res.Content = append(res.Content, &mcp.TextContent{Text: fmt.Sprintf("part %d: the key is %s, keep it safe", i, ts.secret)})
	}
	return res, nil
}

func (ts *mcpTools) slowTool(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in struct{ Steps int }
	json.Unmarshal(ts.ran(req), &in)
	if in.Steps <= 0 {
		in.Steps = 2
	}
	token := req.Params.GetProgressToken()
	for i := 1; i <= in.Steps; i++ {
		if token != nil {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token, Progress: float64(i), Total: float64(in.Steps), Message: fmt.Sprintf("step %d", i)})
			if err != nil {
				return nil, fmt.Errorf("slow: progress %d: %w", i, err)
			}
		}
		select {
		case <-ts.step:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(ts.stepTO):
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{
				Text: fmt.Sprintf("slow: step %d was not advanced within %v", i, ts.stepTO)}}}, nil
		}
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "slow: done"}}}, nil
}

func (ts *mcpTools) bigTool(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in struct{ Bytes int }
	json.Unmarshal(ts.ran(req), &in)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Repeat("x", max(in.Bytes, 0))}}}, nil
}

func (ts *mcpTools) advance(timeout time.Duration) error {
	select {
	case ts.step <- struct{}{}:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("advance: the slow tool was not waiting for a step within %v", timeout)
	}
}
