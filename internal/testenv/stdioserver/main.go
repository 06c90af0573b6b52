// Command stdioserver is a Go SDK (v1.8.0) MCP server on the stdio
// transport, for the tests of agentg's stdio doors (`agentg wrap`, the
// `command:` servers). Every tool call is recorded before it runs: one
// line "TOOL ARGS-JSON" appended to the file $STDIOSERVER_MARKS, so that a
// test proves from the server's own side what ran, with what arguments.
// $STDIOSERVER_ECHO_DESCRIPTION changes the echo tool's description;
// $STDIOSERVER_PRINT_ENV names a variable it prints to stderr at start.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Secret is what the secret tool answers with (AWS's documented example
// key id, which a redaction for AKIA[0-9A-Z]{16} covers).
const Secret = "AKIAIOSFODNN7EXAMPLE"

var marks sync.Mutex

func record(tool string, args any) {
	path := os.Getenv("STDIOSERVER_MARKS")
	if path == "" {
		return
	}
	b, _ := json.Marshal(args)
	marks.Lock()
	defer marks.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stdioserver:", err)
		return
	}
	fmt.Fprintf(f, "%s %s\n", tool, b)
	f.Close()
}

type textIn struct {
	Text string `json:"text,omitempty"`
}

type fetchIn struct {
	URL string `json:"url"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func main() {
	if v := os.Getenv("STDIOSERVER_PRINT_ENV"); v != "" {
		// A server that logs its configuration, secrets and all: what
		// agentg logs of its stderr must not show them.
		fmt.Fprintf(os.Stderr, "stdioserver: %s=%s\n", v, os.Getenv(v))
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "stdioserver", Version: "1.0.0"}, nil)
	desc := "Echoes its text."
	if d := os.Getenv("STDIOSERVER_ECHO_DESCRIPTION"); d != "" {
		desc = d // a changed definition, for the pin tests
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: desc},
		func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			record("echo", in)
			return text("echo: " + in.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_project", Description: "Deletes a project.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)}},
		func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			record("delete_project", in)
			return text("deleted " + in.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "secret", Description: "Answers with a secret."},
		func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			record("secret", in)
			return text("the key is " + Secret), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fetch", Description: "GETs a URL (through HTTP_PROXY/HTTPS_PROXY) and answers with the status and body."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in fetchIn) (*mcp.CallToolResult, any, error) {
			record("fetch", in)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL, nil)
			if err != nil {
				return nil, nil, err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return text("fetch error: " + err.Error()), nil, nil
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return text(fmt.Sprintf("%d %s", resp.StatusCode, b)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "hang", Description: "Never answers until cancelled."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			record("hang", in)
			<-ctx.Done()
			return nil, nil, ctx.Err()
		})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "stdioserver:", err)
		os.Exit(1)
	}
}

func ptr[T any](v T) *T { return &v }
