package otlp

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentg/agentg/audit"
)

// Each kind of event gets the span name, kind and key attributes the
// conventions (and README) say.
func TestDescribe(t *testing.T) {
	tests := []struct {
		name  string
		e     *audit.Event
		want  string
		kind  trace.SpanKind
		attrs map[string]string
	}{
		{"gemini turn", &audit.Event{Kind: "llm", LLM: &audit.LLM{Provider: "google", Dialect: "gemini", Model: "gemini-2.5-flash"}},
			"generate_content gemini-2.5-flash", trace.SpanKindClient,
			map[string]string{"gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "gcp.gemini", "agentg.llm.provider": "google"}},
		{"compatible provider", &audit.Event{Kind: "llm", LLM: &audit.LLM{Provider: "vllm", Dialect: "openai-chat", Model: "m"}},
			"chat m", trace.SpanKindClient, map[string]string{"gen_ai.provider.name": "vllm"}},
		{"prompt", &audit.Event{Kind: "mcp", Method: "prompts/get", MCP: &audit.MCP{Prompt: "p"}},
			"prompts/get p", trace.SpanKindClient, map[string]string{"gen_ai.prompt.name": "p", "mcp.method.name": "prompts/get"}},
		{"resource", &audit.Event{Kind: "mcp", Method: "resources/read", MCP: &audit.MCP{URI: "file:///a"}},
			"resources/read", trace.SpanKindClient, map[string]string{"mcp.resource.uri": "file:///a"}},
		{"mcp action", &audit.Event{Kind: "mcp", MCP: &audit.MCP{Action: "tool-new", Tool: "t"}},
			"mcp tool-new", trace.SpanKindInternal, map[string]string{"agentg.mcp.action": "tool-new", "gen_ai.tool.name": "t"}},
		{"denied call", &audit.Event{Kind: "mcp", Method: "tools/call", Decision: "deny", Rule: "no-x", MCP: &audit.MCP{Tool: "x", ErrorCode: -32600}},
			"tools/call x", trace.SpanKindClient, map[string]string{"error.type": errDenied, "rpc.response.status_code": "-32600", "agentg.rule": "no-x"}},
		{"dns", &audit.Event{Kind: "dns", Host: "example.com", DNS: &audit.DNS{Type: "AAAA", Rcode: "NXDOMAIN"}},
			"DNS AAAA", trace.SpanKindServer, map[string]string{"dns.question.name": "example.com", "agentg.dns.rcode": "NXDOMAIN"}},
		{"approval step", &audit.Event{Kind: "approval", Approval: &audit.Approval{ID: "ap1", Action: "approved"}},
			"approval approved", trace.SpanKindInternal, map[string]string{"agentg.approval.id": "ap1"}},
		{"tunnel", &audit.Event{Kind: "connect", Method: "CONNECT", Host: "h", Port: 443, Scheme: "tunnel"},
			"CONNECT", trace.SpanKindClient, map[string]string{"http.request.method": "CONNECT", "server.address": "h"}},
		{"no method", &audit.Event{Kind: "oauth"}, "oauth", trace.SpanKindClient, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, kind, attrs := describe(tc.e, nil)
			if name != tc.want || kind != tc.kind {
				t.Fatalf("%q %v, want %q %v", name, kind, tc.want, tc.kind)
			}
			got := map[string]string{}
			for _, a := range attrs {
				if a.Value.Type() == attribute.STRING {
					got[string(a.Key)] = a.Value.AsString()
				}
			}
			for k, v := range tc.attrs {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}
