package test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7: prompts/get and resources/read ruled by name and URI. A denied
// one never reaches the server (its counters say so), and prompts/list,
// resources/list and resources/templates/list hide what the agent may not
// get or read, on every revision and framing.

const mcpReadsSection = mcpBase + `
  prompts:
    - deny: "srv.admin_*"
      id: no-admin-prompts
  resources:
    - deny: srv
      uri: "file:///srv/private/*"
      id: no-private
    - deny: "*"
      uri: "file:///etc/*"
      id: no-etc
`

// wantDeniedErr fails unless err is agentg's refusal naming rule: a
// JSON-RPC error -32001 whose data.rule is rule.
func wantDeniedErr(t *testing.T, err error, rule string) {
	t.Helper()
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != -32001 || dataRule(werr.Data) != rule {
		t.Fatalf("got %v, want a JSON-RPC error -32001 naming %s", err, rule)
	}
}

func TestMCPPromptsAndResources(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpReadsSection), testenv.MCPServerConfig{})
	for _, c := range mcpCases() {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			cl := e.connect(t, c, nil)
			ctx := mcpCtx(t)

			prompts, err := cl.ListPrompts(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range prompts.Prompts {
				names = append(names, p.Name)
			}
			if !slices.Contains(names, testenv.MCPPromptSummarise) || slices.Contains(names, testenv.MCPPromptAdmin) {
				t.Errorf("prompts/list through agentg: %v, want %s listed and %s hidden", names, testenv.MCPPromptSummarise, testenv.MCPPromptAdmin)
			}
			before := s.PromptGets(testenv.MCPPromptSummarise)
			got, err := cl.GetPrompt(ctx, &mcp.GetPromptParams{Name: testenv.MCPPromptSummarise, Arguments: map[string]string{"topic": "lunch"}})
			if err != nil || len(got.Messages) != 1 || s.PromptGets(testenv.MCPPromptSummarise) != before+1 {
				t.Fatalf("allowed prompts/get: %v %v, ran %d", got, err, s.PromptGets(testenv.MCPPromptSummarise)-before)
			}
			_, err = cl.GetPrompt(ctx, &mcp.GetPromptParams{Name: testenv.MCPPromptAdmin})
			wantDeniedErr(t, err, "no-admin-prompts")
			if n := s.PromptGets(testenv.MCPPromptAdmin); n != 0 {
				t.Fatalf("the denied prompt ran %d times", n)
			}
			waitCallEvent(t, e.env, s, map[string]any{"method": "prompts/get", "prompt": testenv.MCPPromptAdmin,
				"decision": "deny", "rule": "no-admin-prompts", "server": "srv", "revision": c.rev})

			res, err := cl.ListResources(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var uris []string
			for _, r := range res.Resources {
				uris = append(uris, r.URI)
			}
			if !slices.Contains(uris, testenv.MCPResourceReadme) || slices.Contains(uris, testenv.MCPResourcePrivate) {
				t.Errorf("resources/list through agentg: %v, want %s listed and %s hidden", uris, testenv.MCPResourceReadme, testenv.MCPResourcePrivate)
			}
			tpls, err := cl.ListResourceTemplates(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, tp := range tpls.ResourceTemplates {
				texts = append(texts, tp.URITemplate)
			}
			if !slices.Contains(texts, testenv.MCPTemplateSrv) || slices.Contains(texts, testenv.MCPTemplateEtc) {
				t.Errorf("resources/templates/list through agentg: %v, want %s listed and %s hidden", texts, testenv.MCPTemplateSrv, testenv.MCPTemplateEtc)
			}

			before = s.Reads(testenv.MCPResourceReadme)
			read, err := cl.ReadResource(ctx, &mcp.ReadResourceParams{URI: testenv.MCPResourceReadme})
			if err != nil || len(read.Contents) != 1 || !strings.Contains(read.Contents[0].Text, "readme") || s.Reads(testenv.MCPResourceReadme) != before+1 {
				t.Fatalf("allowed resources/read: %v %v", read, err)
			}
			all := s.Reads("")
			for _, tt := range []struct{ uri, rule string }{
				{testenv.MCPResourcePrivate, "no-private"},
				{"file:///srv/%70rivate/key", "no-private"},         // the same file, escaped
				{"file:///srv/public/../private/key", "no-private"}, // and through a dot segment
				{"file:///etc/passwd", "no-etc"},                    // through a listed template
			} {
				_, err := cl.ReadResource(ctx, &mcp.ReadResourceParams{URI: tt.uri})
				wantDeniedErr(t, err, tt.rule)
			}
			if n := s.Reads(""); n != all {
				t.Fatalf("denied reads reached the server: %d", n-all)
			}
			waitCallEvent(t, e.env, s, map[string]any{"method": "resources/read", "uri": "file:///etc/passwd",
				"decision": "deny", "rule": "no-etc", "server": "srv", "revision": c.rev})
		})
	}
}
