package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17, command servers served by the gateway door: a Go SDK client
// at the gateway sees a stdio server agentg runs (the Go SDK's, and the
// TypeScript everything server) in the merged catalogue, its calls meet
// the same guard (door gateway, server = the entry's name), the client
// sessions share the server's one process with their ids mapped, and a
// child killed mid-call gives the caller an error and a restart.

// stdioGatewayPolicy serves the Go SDK stdio server as "files" (its
// delete_project denied) through the gateway.
func stdioGatewayPolicy(bin, marks string) string {
	return fmt.Sprintf(`
mcp:
  servers:
    - name: files
      command: [%q]
      env:
        STDIOSERVER_MARKS: %q
      timeout: 20s
  tools:
    - deny: files.delete_project
      id: no-files-delete
`, bin, marks)
}

// childPID is the pid of the latest start of server's process that is
// not one of not, from its server-start event.
func childPID(t *testing.T, ctx context.Context, ag *testenv.Agentg, server string, not ...int) int {
	t.Helper()
	re := regexp.MustCompile(`started \(pid (\d+)\)`)
	var pid int
	_, err := eventSoon(ctx, ag, func(m map[string]any) bool {
		if m["action"] != "server-start" || m["server"] != server || m["decision"] != "allow" {
			return false
		}
		sm := re.FindStringSubmatch(fmt.Sprint(m["reason"]))
		if sm == nil {
			return false
		}
		n, _ := strconv.Atoi(sm[1])
		if slices.Contains(not, n) {
			return false
		}
		pid = n
		return true
	})
	if err != nil {
		t.Fatalf("no start of %s: %v\n%s", server, err, gatewayLog(t, ag))
	}
	return pid
}

// eventSoon is ag.WaitEvent bounded by 10 s within ctx. testenv's wait
// reads the log once its stream is open, but the log is flushed every
// 100 ms: an event logged just before the stream opened can be in
// neither until the wait ends and reads the log again. Ending the wait
// soon finds it then, instead of at the end of the test's whole ctx.
func eventSoon(ctx context.Context, ag *testenv.Agentg, match func(map[string]any) bool) (map[string]any, error) {
	evs, err := eventsSoon(ctx, ag, 1, match)
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

func eventsSoon(ctx context.Context, ag *testenv.Agentg, n int, match func(map[string]any) bool) ([]map[string]any, error) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ag.WaitEvents(wctx, n, match)
}

func marksOf(t *testing.T, path string) []string {
	t.Helper()
	got, err := testenv.StdioMarks(path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestGatewayStdioGoSDK(t *testing.T) {
	bin, err := testenv.StdioServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(rev, func(t *testing.T) {
			marks := filepath.Join(t.TempDir(), "marks")
			ag := startGatewayAgentg(t, stdioGatewayPolicy(bin, marks))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			endpoint := "http://" + ag.Gateway + "/mcp"
			c := connectGateway(t, ctx, endpoint, rev, nil)

			// Listed with the server's names under its prefix; the
			// denied tool is hidden.
			names := toolNames(t, ctx, c)
			for _, want := range []string{"files.echo", "files.fetch", "files.hang", "files.secret"} {
				if !slices.Contains(names, want) {
					t.Errorf("tools/list lacks %s: %v", want, names)
				}
			}
			if slices.Contains(names, "files.delete_project") {
				t.Errorf("tools/list shows the denied files.delete_project: %v", names)
			}

			// A call both ways: the arguments reach the server, its
			// answer the client.
			res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "files.echo", Arguments: map[string]any{"text": "hi"}})
			if err != nil {
				t.Fatalf("files.echo: %v\n%s", err, gatewayLog(t, ag))
			}
			if got := gwText(res); got != "echo: hi" {
				t.Fatalf("files.echo answered %q", got)
			}
			if _, err := eventSoon(ctx, ag, func(m map[string]any) bool {
				return m["kind"] == "mcp" && m["door"] == "gateway" && m["server"] == "files" && m["tool"] == "echo" &&
					m["method"] == "tools/call" && m["decision"] == "allow"
			}); err != nil {
				t.Fatal(err)
			}

			// The denied tool: refused by the guard with its rule, and
			// never run: the next call the server records is the marker.
			if res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "files.delete_project", Arguments: map[string]any{"text": "p1"}}); err == nil && !res.IsError {
				t.Fatalf("files.delete_project ran: %q", gwText(res))
			}
			if _, err := eventSoon(ctx, ag, func(m map[string]any) bool {
				return m["kind"] == "mcp" && m["door"] == "gateway" && m["server"] == "files" && m["tool"] == "delete_project" &&
					m["decision"] == "deny" && m["rule"] == "no-files-delete"
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "files.echo", Arguments: map[string]any{"text": "marker"}}); err != nil {
				t.Fatal(err)
			}
			if got := marksOf(t, marks); !slices.Equal(got, []string{`echo {"text":"hi"}`, `echo {"text":"marker"}`}) {
				t.Fatalf("the server ran %q, want the two echoes only", got)
			}

			// Two client sessions at once on the one process: each gets
			// its own answers (both SDK clients number their requests
			// from 1, so unmapped ids would cross).
			c2 := connectGateway(t, ctx, endpoint, rev, nil)
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for s, cl := range []*testenv.MCPClient{c, c2} {
				for i := range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						text := fmt.Sprintf("session %d call %d", s, i)
						res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: "files.echo", Arguments: map[string]any{"text": text}})
						switch {
						case err != nil:
							errs <- fmt.Errorf("%s: %w", text, err)
						case gwText(res) != "echo: "+text:
							errs <- fmt.Errorf("%s: answered %q", text, gwText(res))
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := len(marksOf(t, marks)); n != 2+32 {
				t.Errorf("the server ran %d calls, want 34", n)
			}

			// A reload reaches the sessions open on the child: a tool the
			// new policy denies is refused on the next call, and never runs.
			reloaded := func() int {
				n := 0
				lines, _ := testenv.ReadLog(ag.LogFile)
				for _, l := range lines {
					if l["message"] == "policy reloaded" {
						n++
					}
				}
				return n
			}
			before := reloaded()
			policy := stdioGatewayPolicy(bin, marks) + "    - deny: files.secret\n      id: no-files-secret\n"
			if err := os.WriteFile(ag.PolicyFile, []byte(withFloor(policy)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := ag.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return reloaded() > before }, "agentg to reload after SIGHUP")
			for _, cl := range []*testenv.MCPClient{c, c2} {
				res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: "files.secret", Arguments: map[string]any{}})
				if err == nil && !res.IsError {
					t.Fatalf("files.secret after the reload that denies it: %q", gwText(res))
				}
			}
			if _, err := eventsSoon(ctx, ag, 2, func(m map[string]any) bool {
				return m["kind"] == "mcp" && m["server"] == "files" && m["tool"] == "secret" && m["decision"] == "deny" && m["rule"] == "no-files-secret"
			}); err != nil {
				t.Fatalf("%v\n%s", err, gatewayLog(t, ag))
			}
			if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "files.echo", Arguments: map[string]any{"text": "after reload"}}); err != nil {
				t.Fatal(err)
			}
			if got := marksOf(t, marks); len(got) != 35 || got[34] != `echo {"text":"after reload"}` {
				t.Fatalf("the server ran %d calls, the last %q: want the marker right after the 34 before", len(got), got[len(got)-1])
			}

			// Killed mid-call: the call in flight gets an error (not a
			// hang), the supervisor restarts the process, and the next
			// call works on the new one.
			pid := childPID(t, ctx, ag, "files")
			hung := make(chan error, 1)
			go func() {
				_, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "files.hang", Arguments: map[string]any{}})
				hung <- err
			}()
			waitMark(t, marks, "hang")
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-hung:
				if err == nil {
					t.Fatal("the call in flight when the server died succeeded")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the call in flight when the server died hangs")
			}
			for _, want := range []map[string]any{
				{"action": "server-exit", "server": "files"},
				{"action": "server-restart", "server": "files"},
				{"kind": "mcp", "door": "gateway", "server": "files", "tool": "hang", "error_code": float64(-32603)},
			} {
				if _, err := eventSoon(ctx, ag, func(m map[string]any) bool { return matches(m, want) }); err != nil {
					t.Fatalf("no event %v: %v\n%s", want, err, gatewayLog(t, ag))
				}
			}
			pid2 := childPID(t, ctx, ag, "files", pid)
			for s, cl := range []*testenv.MCPClient{c, c2} {
				res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: "files.echo", Arguments: map[string]any{"text": fmt.Sprint("again ", s)}})
				if err != nil {
					t.Fatalf("session %d after the restart: %v\n%s", s, err, gatewayLog(t, ag))
				}
				if got := gwText(res); got != fmt.Sprint("echo: again ", s) {
					t.Fatalf("session %d after the restart: %q", s, got)
				}
			}
			if pid2 == pid {
				t.Fatal("no new process after the kill")
			}

		})
	}
}

// TestGatewayStdioEverything: the TypeScript everything server (stdio)
// as a command server behind the gateway: listed, called, and its denied
// toggle never runs (the toggle's next answer starts, not stops).
func TestGatewayStdioEverything(t *testing.T) {
	node, dir, err := testenv.Node()
	if err != nil {
		t.Skip(err)
	}
	script := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if _, err := os.Stat(script); err != nil {
		t.Skipf("the everything server is not installed (%v): scripts/test.sh installs it with npm ci --prefix test/conformance", err)
	}
	ag := startGatewayAgentg(t, fmt.Sprintf(`
mcp:
  servers:
    - name: everything
      command: [%q, %q, stdio]
      prefix: ev
      timeout: 20s
  tools:
    - deny: "everything.toggle-simulated-logging"
      id: no-toggle
      when:
        - arg: /really
          exists: true
`, node, script))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := connectGateway(t, ctx, "http://"+ag.Gateway+"/mcp", "2025-11-25", nil)
	names := toolNames(t, ctx, c)
	for _, want := range []string{"ev.echo", "ev.get-sum", "ev.toggle-simulated-logging"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %s: %v", want, names)
		}
	}
	res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "ev.echo", Arguments: map[string]any{"message": "through the gateway"}})
	if err != nil {
		t.Fatalf("ev.echo: %v\n%s", err, gatewayLog(t, ag))
	}
	if got := gwText(res); !strings.Contains(got, "through the gateway") {
		t.Fatalf("ev.echo answered %q", got)
	}
	if res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "ev.toggle-simulated-logging", Arguments: map[string]any{"really": true}}); err == nil && !res.IsError {
		t.Fatalf("the denied toggle ran: %q", gwText(res))
	}
	if _, err := eventSoon(ctx, ag, func(m map[string]any) bool {
		return m["kind"] == "mcp" && m["door"] == "gateway" && m["server"] == "everything" &&
			m["tool"] == "toggle-simulated-logging" && m["decision"] == "deny" && m["rule"] == "no-toggle"
	}); err != nil {
		t.Fatal(err)
	}
	res, err = c.CallTool(ctx, &mcp.CallToolParams{Name: "ev.toggle-simulated-logging", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := gwText(res); !strings.HasPrefix(got, "Started simulated") {
		t.Fatalf("the toggle after the denied one answered %q: the denied call ran", got)
	}
}

// TestGatewayStdioServerRequests: a stdio server's own request
// (sampling) reaches the client session whose call caused it; while two
// sessions have calls in flight, stdio does not say whose it is, and it
// is refused to the server, never answered by the other agent's client.
func TestGatewayStdioServerRequests(t *testing.T) {
	node, dir, err := testenv.Node()
	if err != nil {
		t.Skip(err)
	}
	script := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if _, err := os.Stat(script); err != nil {
		t.Skipf("the everything server is not installed (%v)", err)
	}
	ag := startGatewayAgentg(t, fmt.Sprintf(`
mcp:
  servers:
    - name: everything
      command: [%q, %q, stdio]
      prefix: ev
      timeout: 20s
`, node, script))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	endpoint := "http://" + ag.Gateway + "/mcp"
	var sampledA, sampledB atomic.Int32
	sampler := func(who string, n *atomic.Int32) func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			n.Add(1)
			return &mcp.CreateMessageResult{Model: "test", Role: "assistant", Content: &mcp.TextContent{Text: "sampled by " + who}}, nil
		}
	}
	progressB := make(chan struct{}, 16)
	a := connectGateway(t, ctx, endpoint, "2025-11-25", &mcp.ClientOptions{CreateMessageHandler: sampler("A", &sampledA)})
	b := connectGateway(t, ctx, endpoint, "2025-11-25", &mcp.ClientOptions{CreateMessageHandler: sampler("B", &sampledB),
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case progressB <- struct{}{}:
			default:
			}
		}})

	// One session with a call in flight: the request is its client's.
	res, err := a.CallTool(ctx, &mcp.CallToolParams{Name: "ev.trigger-sampling-request", Arguments: map[string]any{"prompt": "p"}})
	if err != nil {
		t.Fatalf("sampling through the gateway: %v\n%s", err, gatewayLog(t, ag))
	}
	if got := gwText(res); !strings.Contains(got, "sampled by A") || sampledA.Load() != 1 || sampledB.Load() != 0 {
		t.Fatalf("A's sampling: %q (A sampled %d, B %d)", got, sampledA.Load(), sampledB.Load())
	}

	// B's call in flight (its progress shows it), then A's sampling: two
	// sessions could have caused it, so neither client is asked.
	long := &mcp.CallToolParams{Name: "ev.trigger-long-running-operation", Arguments: map[string]any{"duration": 6, "steps": 6}}
	long.SetProgressToken("b-long")
	bDone := make(chan error, 1)
	go func() {
		_, err := b.CallTool(ctx, long)
		bDone <- err
	}()
	select {
	case <-progressB:
	case <-ctx.Done():
		t.Fatal("B's long call never reported progress")
	}
	res, err = a.CallTool(ctx, &mcp.CallToolParams{Name: "ev.trigger-sampling-request", Arguments: map[string]any{"prompt": "q"}})
	if err == nil && !res.IsError {
		t.Fatalf("sampling while two sessions have calls in flight answered %q (A sampled %d, B %d)", gwText(res), sampledA.Load(), sampledB.Load())
	}
	if _, err := eventSoon(ctx, ag, func(m map[string]any) bool {
		return m["action"] == "server-request-unrouted" && m["server"] == "everything" && m["method"] == "sampling/createMessage" && m["decision"] == "deny"
	}); err != nil {
		t.Fatalf("%v\n%s", err, gatewayLog(t, ag))
	}
	if err := <-bDone; err != nil {
		t.Fatalf("B's long call: %v", err)
	}
	if sampledA.Load() != 1 || sampledB.Load() != 0 {
		t.Fatalf("a client answered a request it did not cause: A sampled %d times, B %d (want 1, 0)", sampledA.Load(), sampledB.Load())
	}
}
