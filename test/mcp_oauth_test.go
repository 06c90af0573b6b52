package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 16, OAuth for MCP servers: the official conformance suite's auth
// scenarios play an MCP server that requires OAuth and its
// authorization server, and judge the client's OAuth on the wire. The
// client here is the Go SDK client with no OAuth handler going through
// agentg (test/conformance/authclient): agentg is the OAuth client. A
// representative subset runs here; scripts/conformance.sh auth runs them
// all.

func buildAuthClient(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "authclient")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/agentg/agentg/test/conformance/authclient")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the harness: %v\n%s", err, out)
	}
	return bin
}

// tokenInChecks matches the access tokens the suite's authorization
// servers issued, as its checks record them.
var tokenInChecks = regexp.MustCompile(`(?:test-token|cc-token)-[A-Za-z0-9-]*[0-9]{10,}`)

type authRun struct {
	checks []struct{ ID, Status, Description string }
	tokens []string // access tokens the scenario's AS issued
	log    string   // the suite's output
	agentg string   // agentg's event log and stderr
	exit   error
}

func runAuthScenario(t *testing.T, node, suite, harness, agentg, scenario, rev string, env ...string) authRun {
	t.Helper()
	out, dir := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{suite, "client", "--command", harness, "--scenario", scenario, "-o", out}
	if rev != "" {
		args = append(args, "--spec-version", rev) // an extension is on no revision's timeline: none
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTG_BIN=" + agentg, "AGENTG_HARNESS_DIR=" + dir}, env...)
	b, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish: %v\n%s", scenario, ctx.Err(), b)
	}
	r := authRun{log: string(b), exit: err}
	files, _ := filepath.Glob(filepath.Join(out, "*", "*", "checks.json"))
	if len(files) != 1 {
		t.Fatalf("%s left %d checks files:\n%s", scenario, len(files), b)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &r.checks); err != nil {
		t.Fatal(err)
	}
	r.tokens = tokenInChecks.FindAllString(string(raw), -1)
	res, _ := os.ReadFile(filepath.Join(filepath.Dir(files[0]), "stderr.txt"))
	lg, _ := os.ReadFile(filepath.Join(dir, "agentg.log"))
	r.agentg = string(lg) + string(res)
	if len(lg) == 0 {
		t.Fatalf("%s: agentg wrote no event log:\n%s", scenario, b)
	}
	return r
}

func (r authRun) failed() []string {
	var out []string
	for _, c := range r.checks {
		if c.Status == "FAILURE" {
			out = append(out, c.ID+": "+c.Description)
		}
	}
	return out
}

func (r authRun) has(id, status string) bool {
	for _, c := range r.checks {
		if c.ID == id && c.Status == status {
			return true
		}
	}
	return false
}

func TestMCPOAuthConformanceThroughAgentg(t *testing.T) {
	node, suite := conformanceRunner(t)
	harness := buildAuthClient(t)
	agentg, err := testenv.AgentgBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		scenario, rev string
		env           []string
		// proof is a check that shows the scenario's point was
		// reached and passed (not merely that nothing failed).
		proof string
		// refused: agentg must stop, so the harness fails the call.
		refused bool
	}{
		{scenario: "auth/metadata-default", rev: "2025-11-25", proof: "resource-parameter-matches-prm"},
		// The agent's own Authorization toward the server is dropped:
		// the suite's server fails any token it did not issue.
		{scenario: "auth/metadata-default", rev: "2026-07-28", proof: "valid-bearer-token",
			env: []string{"AUTHCLIENT_AGENT_AUTHORIZATION=Bearer agent-own-5f1c2e"}},
		{scenario: "auth/basic-cimd", rev: "2025-11-25", proof: "cimd-client-id-used"},
		{scenario: "auth/scope-step-up", rev: "2026-07-28", proof: "sep-2350-scope-union-on-reauth"},
		{scenario: "auth/scope-retry-limit", rev: "2025-11-25", proof: "scope-retry-limit", refused: true},
		{scenario: "auth/client-credentials-basic", proof: "client-credentials-basic-auth"},
		{scenario: "auth/iss-supported", rev: "2026-07-28", proof: "sep-2468-client-compare-iss-supported"},
		{scenario: "auth/iss-wrong-issuer", rev: "2026-07-28", proof: "sep-2468-client-compare-iss-supported", refused: true},
		{scenario: "auth/resource-mismatch", rev: "2026-07-28", proof: "resource-mismatch-rejected", refused: true},
	} {
		t.Run(strings.TrimPrefix(c.scenario, "auth/")+"@"+c.rev, func(t *testing.T) {
			r := runAuthScenario(t, node, suite, harness, agentg, c.scenario, c.rev, c.env...)
			// The suite exits 0 when a scenario that allows the client
			// to fail passed; whether the harness's calls failed it
			// says in its output.
			clientFailed := strings.Contains(r.log, "Client exited with code")
			if f := r.failed(); len(f) > 0 || r.exit != nil || clientFailed && !c.refused {
				t.Fatalf("through agentg: failed checks %v (exit %v)\n%s", f, r.exit, r.log)
			}
			if !r.has(c.proof, "SUCCESS") {
				t.Fatalf("check %s did not succeed:\n%s", c.proof, r.log)
			}
			if c.refused && !clientFailed {
				t.Fatalf("the harness's calls all succeeded where agentg had to refuse:\n%s", r.log)
			}
			if !c.refused && len(r.tokens) == 0 {
				t.Fatalf("the scenario issued no token agentg could have leaked:\n%s", r.log)
			}
			for _, tok := range r.tokens {
				if strings.Contains(r.agentg, tok) {
					t.Fatalf("agentg wrote the access token %s...", tok[:12])
				}
			}
			if strings.Contains(r.agentg, "agent-own-5f1c2e") {
				t.Fatal("agentg wrote the agent's own credential")
			}
			if !strings.Contains(r.agentg, `"kind":"oauth"`) {
				t.Fatal("agentg wrote no oauth event")
			}
		})
	}
}
