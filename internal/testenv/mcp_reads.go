package testenv

import (
	"context"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The prompts and resources every MCPServer serves. Each prompts/get and
// resources/read counts before anything else (MCPServer.PromptGets,
// MCPServer.Reads), so a test proves that a denied one never reached the
// server by the count alone.
const (
	// MCPPromptSummarise answers with one user message naming its topic
	// argument.
	MCPPromptSummarise = "summarise"
	// MCPPromptAdmin is the prompt a policy denies by name.
	MCPPromptAdmin = "admin_reset"

	// MCPResourceReadme and MCPResourcePrivate are listed resources; the
	// second is the one a policy denies by URI.
	MCPResourceReadme  = "file:///srv/readme.txt"
	MCPResourcePrivate = "file:///srv/private/key"
	// MCPTemplateSrv and MCPTemplateEtc are resource templates: any
	// file:///srv/... and file:///etc/NAME URI is read through them.
	MCPTemplateSrv = "file:///srv/{+path}"
	MCPTemplateEtc = "file:///etc/{name}"
)

type mcpReads struct {
	mu    sync.Mutex
	gets  map[string]int64 // by prompt name
	reads map[string]int64 // by URI as the server read it
}

func newMCPReads(srv *mcp.Server) *mcpReads {
	r := &mcpReads{gets: map[string]int64{}, reads: map[string]int64{}}
	srv.AddPrompt(&mcp.Prompt{Name: MCPPromptSummarise, Description: "Summarises a topic.",
		Arguments: []*mcp.PromptArgument{{Name: "topic", Required: true}}}, r.prompt)
	srv.AddPrompt(&mcp.Prompt{Name: MCPPromptAdmin, Description: "Resets the admin account."}, r.prompt)
	srv.AddResource(&mcp.Resource{URI: MCPResourceReadme, Name: "readme", MIMEType: "text/plain"}, r.read)
	srv.AddResource(&mcp.Resource{URI: MCPResourcePrivate, Name: "key", MIMEType: "text/plain"}, r.read)
	srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: MCPTemplateSrv, Name: "srv files"}, r.read)
	srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: MCPTemplateEtc, Name: "etc files"}, r.read)
	return r
}

func (r *mcpReads) prompt(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	r.mu.Lock()
	r.gets[req.Params.Name]++
	r.mu.Unlock()
	return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user",
		Content: &mcp.TextContent{Text: req.Params.Name + ": " + req.Params.Arguments["topic"]}}}}, nil
}

func (r *mcpReads) read(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	r.mu.Lock()
	r.reads[req.Params.URI]++
	r.mu.Unlock()
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain",
		Text: "contents of " + req.Params.URI}}}, nil
}

// PromptGets is how many times prompt was got.
func (s *MCPServer) PromptGets(prompt string) int64 {
	s.reads.mu.Lock()
	defer s.reads.mu.Unlock()
	return s.reads.gets[prompt]
}

// Reads is how many times uri was read (as the server received it);
// with uri "", every read of any URI.
func (s *MCPServer) Reads(uri string) int64 {
	s.reads.mu.Lock()
	defer s.reads.mu.Unlock()
	if uri == "" {
		var n int64
		for _, c := range s.reads.reads {
			n += c
		}
		return n
	}
	return s.reads.reads[uri]
}
