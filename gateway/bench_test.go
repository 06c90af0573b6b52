package gateway

import (
	"context"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkToolsCall is one tools/call from the Go SDK's client, direct
// to the server and through the gateway (guard included), in process
// over loopback: what the gateway adds per call. bench/ measures agentg
// as its own process against the proxy.
func BenchmarkToolsCall(b *testing.B) {
	f := newFixture(b, nil)
	upstream := f.gw.engine().MCP().GatewayServers()[0].Endpoint
	for _, c := range []struct{ name, url, tool string }{{"direct", upstream, "echo"}, {"gateway", f.url, "up.echo"}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			cl := sdk.NewClient(&sdk.Implementation{Name: "b", Version: "1"}, nil)
			cs, err := cl.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: c.url}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			if _, err := cs.ListTools(ctx, nil); err != nil {
				b.Fatal(err)
			}
			args := map[string]any{"n": 1}
			b.ResetTimer()
			for range b.N {
				if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: c.tool, Arguments: args}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
