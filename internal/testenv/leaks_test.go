package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTB collects what the leak check reports, and runs its cleanups when
// told, so that a test can see the check fail.
type fakeTB struct {
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// The check finds a declared value in a real agentg's event log, in an
// admin API answer and in a command's output, says where by number, and
// never prints the value; values from the policy and the environment are
// declared without the test saying so; values nothing wrote pass.
func TestLeakCheck(t *testing.T) {
	const (
		marker  = "leakcheck-marker.test" // a host agentg will log: a stand-in for a leaked value
		inline  = "inl-4f1c09aa7e"
		fromEnv = "env-8b2d55c3f1"
		unused  = "never-written-6a1e"
	)
	up := StartUpstream(UpstreamOptions{Handler: http.HandlerFunc(Echo)})
	defer up.Close()
	ft := &fakeTB{}
	Secrets(ft, marker, unused, "short")
	dir := t.TempDir()
	a, err := StartAgentg(AgentgConfig{T: ft, Dir: dir, Env: append(os.Environ(), "LEAKCHECK_TOKEN="+fromEnv), Policy: `
default: deny
ips: [{allow: 127.0.0.1/32}]
hosts: [{allow: ` + marker + `}]
resolve: {` + marker + `: [127.0.0.1]}
credentials:
  secrets:
    demo: {insecure_inline: ` + inline + `}
    tok: {env: LEAKCHECK_TOKEN}
  bindings:
    - {host: ` + marker + `, secret: tok, insecure_http: true, header: {name: X-Key, value: "{{secret}}"}}
`})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	if n := Leaks(ft).Values(); n != 4 {
		t.Fatalf("%d values declared, want 4 (marker, unused, and the policy's inline and env values; the short one refused)", n)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	resp, err := c.Get("http://" + marker + ":" + up.Port + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.WaitEvent(ctx, func(e map[string]any) bool { return e["host"] == marker }); err != nil {
		t.Fatal(err)
	}
	if st, b, err := a.AdminGet("/v1/rules"); err != nil || st != 200 || !strings.Contains(string(b), "items") {
		t.Fatalf("admin get: %d %q %v", st, b, err)
	}
	bin, err := AgentgBinary()
	if err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pol, []byte("credentials:\n  secrets:\n    x: {insecure_inline: "+inline+"}\n"), 0o600)
	if code, out, err := RunAgentg(ft, bin, nil, "check", pol); err != nil || code != 0 {
		t.Fatalf("check: %d %v %s", code, err, out)
	}
	Leaks(ft).Record("a hand-made answer", []byte("x "+inline+" y"))
	// A value kept in clear text in the data directory is a leak at rest.
	atRest := filepath.Join(a.DataDir, "state", "tokens.json")
	os.MkdirAll(filepath.Dir(atRest), 0o700)
	os.WriteFile(atRest, []byte(`{"access_token":"`+fromEnv+`"}`), 0o600)

	ft.end()
	all := strings.Join(ft.errs, "\n")
	for _, want := range []string{
		"a declared secret value is shorter than 6 bytes",
		"times in agentg's log " + a.LogFile,
		"secret value #1 (of 4 declared) appears 2 times in the admin API's event stream",
		"secret value #3 (of 4 declared) appears 1 times in a hand-made answer",
		"secret value #4 (of 4 declared) appears 1 times in agentg's data file " + atRest,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the check did not report %q; it reported:\n%s", want, all)
		}
	}
	for _, v := range []string{marker, inline, fromEnv, unused} {
		if strings.Contains(all, v) {
			t.Errorf("the check's report holds a value:\n%s", all)
		}
	}
	if strings.Contains(all, "#2 ") || strings.Count(all, "#4 ") != 1 {
		t.Errorf("a value agentg never wrote was reported:\n%s", all)
	}
}
