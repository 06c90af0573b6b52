package test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7: the model never sees a tool it may not call. tools/list is
// filtered by the same decision as calls, on every page, with the server's
// nextCursor passed on untouched (a page left empty by the filter still
// leads to the next one), and notifications/tools/list_changed passes so
// the client lists again.

// listPage is one page of tools/list.
type listPage struct {
	names []string
	next  string
}

func listAll(t *testing.T, cl *testenv.MCPClient) []listPage {
	t.Helper()
	var pages []listPage
	for cursor := ""; ; {
		res, err := cl.ListTools(mcpCtx(t), &mcp.ListToolsParams{Cursor: cursor})
		if err != nil {
			t.Fatalf("tools/list after %d pages: %v", len(pages), err)
		}
		var p listPage
		for _, tool := range res.Tools {
			p.names = append(p.names, tool.Name)
		}
		p.next = res.NextCursor
		pages = append(pages, p)
		if res.NextCursor == "" || len(pages) > 100 {
			return pages
		}
		cursor = res.NextCursor
	}
}

func TestMCPToolsListFiltered(t *testing.T) {
	// Page size 3 over names in order: archive, big, delete_a | delete_b,
	// delete_c, delete_d | delete_project, echo, files.read | …: the second
	// page is all denied tools.
	cfg := testenv.MCPServerConfig{PageSize: 3, Filler: 5}
	e := newMCPEnv(t, mcpPolicy(mcpBase), cfg)
	for _, s := range e.peers {
		for _, n := range []string{"delete_a", "delete_b", "delete_c", "delete_d"} {
			s.AddEchoTool(&mcp.Tool{Name: n, Description: "Deletes " + n[len("delete_"):] + "."})
		}
	}
	for _, c := range mcpCases() {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			direct, err := testenv.ConnectMCP(mcpCtx(t), c.mode, s.URL, testenv.MCPClientConfig{
				Direct: s.Addr, Roots: e.upCA.Pool(), Revision: c.rev})
			if err != nil {
				t.Fatal(err)
			}
			defer direct.Close()
			want := listAll(t, direct)
			got := listAll(t, e.connect(t, c, nil))
			if len(got) != len(want) {
				t.Fatalf("%d pages through agentg, %d from the server", len(got), len(want))
			}
			for i := range want {
				var kept []string
				for _, n := range want[i].names {
					if !strings.HasPrefix(n, "delete_") {
						kept = append(kept, n)
					}
				}
				if !slices.Equal(got[i].names, kept) {
					t.Errorf("page %d through agentg: %v, want %v (the server's %v without delete_*)", i, got[i].names, kept, want[i].names)
				}
				if got[i].next != want[i].next {
					t.Errorf("page %d: nextCursor %q through agentg, the server's %q", i, got[i].next, want[i].next)
				}
			}
			if !slices.Contains(want[1].names, "delete_b") || len(got[1].names) != 0 {
				t.Errorf("the all-denied page: server %v, through agentg %v", want[1].names, got[1].names)
			}
			waitCallEvent(t, e.env, s, map[string]any{"method": "tools/list", "server": "srv", "revision": c.rev})
		})
	}
}

// notifications/tools/list_changed reaches the client through agentg: on
// the GET stream of a stateful or legacy session, on the
// subscriptions/listen stream under 2026-07-28.
func TestMCPListChangedPasses(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{})
	for _, m := range testenv.MCPModes {
		c := mcpCase{m, m.Revisions()[len(m.Revisions())-1]}
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			changed := make(chan struct{}, 10)
			cl := e.connect(t, c, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
				changed <- struct{}{}
			}})
			listAll(t, cl)
			added := "added_" + strings.ReplaceAll(c.String(), "/", "_")
			deniedToo := "delete_" + strings.ReplaceAll(c.String(), "/", "_")
			untilNotified(t, changed, "adding tools, through agentg", func() error {
				s.AddEchoTool(&mcp.Tool{Name: added, Description: "New."})
				s.AddEchoTool(&mcp.Tool{Name: deniedToo, Description: "New and denied."})
				return nil
			})
			var names []string
			for _, p := range listAll(t, cl) {
				names = append(names, p.names...)
			}
			if !slices.Contains(names, added) || slices.Contains(names, deniedToo) {
				t.Fatalf("tools/list after the change: %v, want %s and not %s", names, added, deniedToo)
			}
		})
	}
}
