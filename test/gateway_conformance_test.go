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
)

// Issue 17: the gateway must not change what MCP means. The conformance
// suite's server scenarios run against the Go SDK's everything-server
// directly and through agentg's gateway fronting it with no prefix; a
// scenario passes when its outcome (every check's status but the INFO
// transcript lines) through the gateway equals its outcome direct. The Go suite runs a representative
// subset; scripts/conformance.sh gateway runs every scenario of both
// revisions' requirements (AGENTG_CONFORMANCE_FULL=1) and ends with the
// line "N passed, M failed".

// gatewayConformanceSubset are the scenarios the Go suite compares: the
// catalogue, the calls that cross the gateway both ways (progress,
// sampling, elicitation), a template read, a prompt, and a call whose
// stream the server closes mid-call for the client to resume (SSE
// polling, 2025-11-25 only).
var gatewayConformanceSubset = []string{
	"tools-list", "tools-call-with-progress", "tools-call-sampling", "tools-call-elicitation",
	"resources-templates-read", "prompts-get-with-args", "server-sse-polling",
}

func TestGatewayConformance(t *testing.T) {
	node, suite := conformanceRunner(t)
	server := buildConformanceServer(t)
	full := os.Getenv("AGENTG_CONFORMANCE_FULL") != ""
	passed, failed := 0, 0
	for _, c := range []struct {
		revision  string
		stateless bool
	}{{"2026-07-28", true}, {"2025-11-25", false}} {
		t.Run(c.revision, func(t *testing.T) {
			url := startConformanceServer(t, server, c.stateless)
			ag := startGatewayAgentg(t, "mcp:\n  servers:\n    - name: everything\n      endpoint: "+url+"\n      prefix: \"\"\n")
			_, port, _ := net.SplitHostPort(ag.Gateway)
			// localhost: the gateway, like the server, refuses a Host
			// that is not loopback's name (DNS rebinding).
			gw := "http://localhost:" + port + "/mcp"
			var scenarios []string
			if !full {
				scenarios = gatewayConformanceSubset
			}
			direct := scenarioOutcomes(t, node, suite, url, c.revision, scenarios)
			through := scenarioOutcomes(t, node, suite, gw, c.revision, scenarios)
			names := make([]string, 0, len(direct))
			for n := range direct {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if through[n] == direct[n] {
					passed++
					continue
				}
				failed++
				t.Errorf("%s %s: direct → through the gateway: %s", c.revision, n, outcomeDiff(direct[n], through[n]))
			}
			if len(names) == 0 {
				t.Fatal("no scenario ran")
			}
		})
	}
	// The one line scripts/conformance.sh ends with.
	fmt.Printf("%d passed, %d failed\n", passed, failed)
}

// scenarioOutcomes runs the suite's server scenarios of revision at url
// (the given ones, or every one the revision requires) and returns each
// scenario's outcome: its checks' statuses in order.
func scenarioOutcomes(t *testing.T, node, suite, url, revision string, scenarios []string) map[string]string {
	t.Helper()
	out := t.TempDir()
	runs := [][]string{{"--requirements", revision}}
	if scenarios != nil {
		runs = nil
		for _, s := range scenarios {
			runs = append(runs, []string{"--scenario", s, "--spec-version", revision})
		}
	}
	for _, extra := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		args := append([]string{suite, "server", "--url", url, "-o", out}, extra...)
		cmd := exec.CommandContext(ctx, node, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		log, _ := cmd.CombinedOutput() // non-zero when a check fails: outcomes are compared, not exit codes
		if ctx.Err() != nil {
			cancel()
			t.Fatalf("the conformance suite did not finish: %v\n%s", ctx.Err(), log)
		}
		cancel()
	}
	outcomes := map[string]string{}
	dirs, _ := os.ReadDir(out)
	stamp := regexp.MustCompile(`-\d{4}-\d\d-\d\dT.*$`)
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(out, d.Name(), "checks.json"))
		if os.IsNotExist(err) {
			// Not a scenario of this revision: the suite skips it, the
			// same way both runs.
			outcomes[stamp.ReplaceAllString(d.Name(), "")] = "none"
			continue
		}
		if err != nil {
			t.Fatalf("scenario %s: %v", d.Name(), err)
		}
		var list []struct{ ID, Status string }
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatalf("scenario %s: %v", d.Name(), err)
		}
		var st []string
		for _, c := range list {
			// INFO lines are the suite's transcript (each event seen),
			// not outcomes: a gateway may frame a stream differently.
			if c.Status != "INFO" {
				st = append(st, c.ID+"="+c.Status)
			}
		}
		outcomes[stamp.ReplaceAllString(d.Name(), "")] = strings.Join(st, ",")
	}
	return outcomes
}

// outcomeDiff names the checks whose status differs between two outcomes.
func outcomeDiff(a, b string) string {
	as, bs := strings.Split(a, ","), strings.Split(b, ",")
	var d []string
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if x != y {
			d = append(d, x+" → "+y)
		}
	}
	return strings.Join(d, "; ")
}
