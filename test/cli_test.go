package test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// agentgBin is agentg built once for the package (testenv.AgentgBinary,
// shared with bench/).
var agentgBin string

func TestMain(m *testing.M) {
	bin, err := testenv.AgentgBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build agentg:", err)
		os.Exit(1)
	}
	agentgBin = bin
	code := m.Run()
	testenv.RemoveAgentgBinary()
	testenv.RemoveStdioServerBinary()
	os.Exit(code)
}

func runAgentg(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(agentgBin, args...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestCLIHelpAndVersion(t *testing.T) {
	if code, out := runAgentg(t, "version"); code != 0 || !strings.HasPrefix(out, "agentg ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out := runAgentg(t, "--help"); code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "check") {
		t.Errorf("--help: %d %q", code, out)
	}
	for _, sub := range []string{"serve", "check", "version"} {
		if code, out := runAgentg(t, sub, "--help"); code != 0 || !strings.Contains(out, "Usage: agentg "+sub) {
			t.Errorf("%s --help: %d %q", sub, code, out)
		}
	}
	if code, _ := runAgentg(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
	if code, _ := runAgentg(t, "serve", "--no-such-flag"); code != 2 {
		t.Errorf("bad flag exit %d, want 2", code)
	}
}

func TestCLICheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(filepath.Join(dir, "deny.txt"), []byte("evil.example\n"), 0o644)
	os.WriteFile(good, []byte(`default: allow
intercept: [.api.example]
hosts:
  - deny: "*.corp.example"
    id: no-corp
lists:
  - path: deny.txt
    format: plain
`), 0o644)
	code, out := runAgentg(t, "check", good, "api.evil.example", "x.corp.example:8443", "fine.example", "10.1.2.3", "0x7f.1", "v1.api.example")
	if code != 0 {
		t.Fatalf("check good: %d %s", code, out)
	}
	for _, want := range []string{
		"api.evil.example:443", "deny.txt:1",
		"x.corp.example:8443", "no-corp",
		"fine.example:443", "allow", "rule=default",
		"10.1.2.3:443", "builtin:non-public:private",
		"127.0.0.1:443", "builtin:non-public:loopback",
		"v1.api.example:443", "intercept=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("default: deny\nhosts:\n  - allow: ok.example\n  - deny: \"a.*.example\"\n"), 0o644)
	code, out = runAgentg(t, "check", bad)
	if code == 0 || !strings.Contains(out, "bad.yaml:4") {
		t.Errorf("check bad: %d %q, want non-zero naming bad.yaml:4", code, out)
	}
	missingList := filepath.Join(dir, "missing.yaml")
	os.WriteFile(missingList, []byte("lists:\n  - path: nope.txt\n    format: plain\n"), 0o644)
	if code, out = runAgentg(t, "check", missingList); code == 0 || !strings.Contains(out, "nope.txt") {
		t.Errorf("check missing list: %d %q", code, out)
	}
}

// agentgProcess is a running `agentg serve` (a testenv.Agentg).
type agentgProcess struct {
	cmd     *exec.Cmd
	logFile string
	addr    string
	proc    *testenv.Agentg
}

// startAgentg runs agentg serve on a free loopback port, logging to
// logFile (appended to), with its data dir beside it, and args after the
// harness's flags; it is killed when the test ends.
func startAgentg(t *testing.T, logFile string, args ...string) *agentgProcess {
	t.Helper()
	a, err := testenv.StartAgentg(testenv.AgentgConfig{
		Binary: agentgBin, LogFile: logFile, DataDir: filepath.Join(filepath.Dir(logFile), "ca"),
		Args: args, Stderr: os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	return &agentgProcess{cmd: a.Cmd, logFile: logFile, addr: a.Addr, proc: a}
}

// readLog returns the JSON lines of the log at path (none when it is
// missing).
func readLog(t *testing.T, path string) []map[string]any {
	lines, _ := testenv.ReadLog(path) // unreadable: nothing logged yet
	return lines
}

func (p *agentgProcess) get(t *testing.T, u string) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.addr})}, Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s via agentg: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stop sends SIGTERM and fails the test unless agentg exits cleanly
// within 10s.
func (p *agentgProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.proc.Stop(10 * time.Second); err != nil {
		t.Fatalf("agentg after SIGTERM: %v", err)
	}
}

func TestServeDefaultPolicy(t *testing.T) {
	up := newUpstream(t, false, nil)
	log := filepath.Join(t.TempDir(), "events.jsonl")
	p := startAgentg(t, log)
	// The embedded default denies every non-public destination.
	if code := p.get(t, "http://127.0.0.1:"+up.port+"/"); code != 403 {
		t.Fatalf("loopback through the default policy: %d, want 403", code)
	}
	p.stop(t)
	found := false
	for _, m := range readLog(t, log) {
		if m["message"] == "decision" && m["rule"] == "builtin:non-public:loopback" {
			found = true
		}
	}
	if !found {
		t.Error("no decision event for the denied request")
	}
}

func TestServeReloadSignalAndLogAppend(t *testing.T) {
	up := newUpstream(t, false, nil)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	log := filepath.Join(dir, "logs", "events.jsonl")
	writeFile(t, policy, basePolicy("hosts:\n  - allow: allowed.test\n"))
	u := "http://allowed.test:" + up.port + "/"

	p := startAgentg(t, log, "--config", policy, "--reload-interval", "0")
	if code := p.get(t, u); code != 200 {
		t.Fatalf("before reload: %d", code)
	}
	writeFile(t, policy, basePolicy("hosts:\n  - deny: allowed.test\n"))
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return p.get(t, u) == 403 }, "SIGHUP reload")

	// A broken policy on SIGHUP is logged and the old one stays.
	writeFile(t, policy, "default: [\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool {
		for _, m := range readLog(t, log) {
			if m["level"] == "error" && strings.Contains(m["error"].(string), "policy.yaml") {
				return true
			}
		}
		return false
	}, "reload error in the log")
	if code := p.get(t, u); code != 403 {
		t.Fatalf("broken reload changed the policy: %d", code)
	}
	p.stop(t)

	// A restart appends to the same log.
	before := len(readLog(t, log))
	writeFile(t, policy, basePolicy("hosts:\n  - allow: allowed.test\n"))
	p = startAgentg(t, log, "--config", policy)
	p.get(t, u)
	p.stop(t)
	if after := len(readLog(t, log)); after <= before+1 {
		t.Errorf("log has %d lines after restart, had %d: not appended", after, before)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
