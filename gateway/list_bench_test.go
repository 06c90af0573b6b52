package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// BenchmarkToolsList is one client's tools/list of a 1000-tool catalogue
// through the gateway, in process, after its first: what a listing costs
// once the agent's lists are cached (bench/ measures ten servers of a
// hundred tools with agentg as its own process).
func BenchmarkToolsList(b *testing.B) {
	f := newFixture(b, nil)
	for i := range 999 { // with echo, 1000 tools listed
		f.up.AddTool(&sdk.Tool{Name: fmt.Sprintf("filler_%03d", i), Description: "Echoes its arguments back.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)},
			func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return &sdk.CallToolResult{}, nil
			})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := testenv.NewMCPRaw(testenv.MCPHTTPClient(testenv.MCPClientConfig{}), testenv.MCPStateful, f.url, "2025-11-25")
	if err := r.Open(ctx); err != nil {
		b.Fatal(err)
	}
	list := func() {
		rep, err := r.Call(ctx, `"l"`, "tools/list", map[string]any{})
		if err != nil || rep.ByID(`"l"`) == nil {
			b.Fatalf("tools/list: %v", err)
		}
	}
	list()
	for b.Loop() {
		list()
	}
}
