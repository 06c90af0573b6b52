package test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var agentgBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agentg-bin")
	if err != nil {
		panic(err)
	}
	agentgBin = filepath.Join(dir, "agentg")
	build := exec.Command("go", "build", "-o", agentgBin, "../cmd/agentg")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build agentg: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
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

// agentgProcess is a running `agentg serve`.
type agentgProcess struct {
	cmd     *exec.Cmd
	logFile string
	addr    string
}

func startAgentg(t *testing.T, logFile string, args ...string) *agentgProcess {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--log-file", logFile, "--data-dir", filepath.Join(filepath.Dir(logFile), "ca")}, args...)
	cmd := exec.Command(agentgBin, args...)
	cmd.Stderr = os.Stderr
	seen := 0
	for _, m := range readLog(t, logFile) {
		if m["message"] == "agentg serving" {
			seen++
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentgProcess{cmd: cmd, logFile: logFile}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The "agentg serving" line this start adds names the address.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && p.addr == "" {
		n := 0
		for _, m := range readLog(t, logFile) {
			if m["message"] == "agentg serving" {
				if n++; n > seen {
					p.addr, _ = m["listen"].(string)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.addr == "" {
		t.Fatal("agentg did not report its listen address")
	}
	return p
}

func readLog(t *testing.T, path string) []map[string]any {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
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

func (p *agentgProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agentg exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agentg did not exit after SIGTERM")
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
