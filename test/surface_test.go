package test

// Issue 16, agents' own credentials and the secrets surface: a hash made
// by agentg passwd proves an agent through the real proxy; agentg
// secrets list, GET /v1/secrets and the console's Secrets view name every
// secret with its source, bindings, state and last use, and never a
// value. Every test here runs the real binary with the leak check
// (testenv: AgentgConfig.T, Secrets, RunAgentg, AdminGet).

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/rules"
)

// passwdHash runs agentg passwd with the password on stdin.
func passwdHash(t *testing.T, pw string, args ...string) string {
	t.Helper()
	code, out, err := testenv.RunAgentg(t, agentgBin, strings.NewReader(pw+"\n"), append([]string{"passwd", "--stdin"}, args...)...)
	if err != nil || code != 0 {
		t.Fatalf("agentg passwd %v: %d %v\n%s", args, code, err, out)
	}
	return strings.TrimSpace(out)
}

func TestPasswdEndToEnd(t *testing.T) {
	const (
		argonPW = "argon-pw-1c7e93b5"
		bcPW    = "bcrypt-pw-5a02de4f"
		plainPW = "plain-pw-77b1c0e9"
	)
	testenv.Secrets(t, argonPW, bcPW, plainPW)
	argon := passwdHash(t, argonPW)
	bc := passwdHash(t, bcPW, "--bcrypt")
	if !strings.HasPrefix(argon, "$argon2id$v=19$m=65536,t=3,p=4$") || !strings.HasPrefix(bc, "$2a$12$") || len(bc) != 60 {
		t.Fatalf("agentg passwd printed %q and %q", argon, bc)
	}
	// Bad input: no password, both algorithms.
	if code, out, _ := testenv.RunAgentg(t, agentgBin, strings.NewReader(""), "passwd", "--stdin"); code != 1 || !strings.Contains(out, "no password on standard input") {
		t.Errorf("passwd with no input: %d %q", code, out)
	}
	if code, _, _ := testenv.RunAgentg(t, agentgBin, nil, "passwd", "--bcrypt", "--argon2id"); code != 2 {
		t.Errorf("passwd --bcrypt --argon2id: exit %d, want 2", code)
	}

	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(testenv.Echo)})
	defer up.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bc.pw"), []byte(bc+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := `
default: deny
ips: [{allow: 127.0.0.1/32}]
agents:
  - name: hashed
    password: "` + argon + `"
  - name: filed
    password_file: ` + filepath.Join(dir, "bc.pw") + `
  - name: plain
    password: ` + plainPW + `
`
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: policy,
		Args: []string{"--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	get := func(user, pass, path string) int {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: a.Addr, User: url.UserPassword(user, pass)})}}
		resp, err := c.Get("http://127.0.0.1:" + up.Port + path)
		if err != nil {
			t.Fatalf("%s via the proxy: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		user, pass string
		want       int
	}{
		{"hashed", argonPW, 200},
		{"hashed", argonPW, 200}, // the second from the cache
		{"hashed", bcPW, 407},
		{"hashed", argonPW + "x", 407},
		{"hashed", argon, 407}, // the hash itself is not the password
		{"filed", bcPW, 200},
		{"filed", argonPW, 407},
		{"plain", plainPW, 200},
		{"plain", "wrong-plain-pw", 407},
	} {
		if got := get(tt.user, tt.pass, "/"+tt.user); got != tt.want {
			t.Errorf("%s with a %s password: %d, want %d", tt.user, map[bool]string{true: "right", false: "wrong"}[tt.want == 200], got, tt.want)
		}
	}
	// The refusal is an event that names the agent, never the password.
	ev := waitEventOf(t, a, "the refused claim", func(e map[string]any) bool {
		r, _ := e["error"].(string)
		return strings.Contains(r, "bad credentials for agent hashed")
	})
	if ev["status"] != float64(407) {
		t.Errorf("the refused claim's event: %v", ev)
	}
	waitEventOf(t, a, "the hashed agent's request", func(e map[string]any) bool {
		return e["agent"] == "hashed" && e["path"] == "/hashed" && e["decision"] == "allow"
	})

	// agentg check warns about the plain password, at its line, and not
	// about the hashed ones; it never prints a password.
	code, out, err := testenv.RunAgentg(t, agentgBin, nil, "check", a.PolicyFile)
	if err != nil || code != 0 {
		t.Fatalf("check: %d %v\n%s", code, err, out)
	}
	if !strings.Contains(out, "policy.yaml:10: agent plain's password is written in plain text") {
		t.Errorf("check does not warn about the plain password:\n%s", out)
	}
	if strings.Contains(out, "agent hashed's") || strings.Contains(out, "agent filed's") {
		t.Errorf("check warns about a hashed password:\n%s", out)
	}
	// A malformed hash is a load error at its line, and names no value.
	bad := strings.Replace(policy, argon, argon[:len(argon)-10], 1)
	badFile := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badFile, []byte(bad), 0o644)
	if code, out, _ := testenv.RunAgentg(t, agentgBin, nil, "check", badFile); code != 1 || !strings.Contains(out, "bad.yaml:6: agent password: malformed argon2id hash") {
		t.Errorf("check of a cut hash: %d\n%s", code, out)
	}
}

// secretsPolicy binds three secrets on plain http to api.sec.test (one
// that cannot be read), and holds a fourth no binding uses.
const secretsPolicy = `
default: deny
ips: [{allow: 127.0.0.1/32}]
hosts: [{allow: api.sec.test}]
resolve: {api.sec.test: [127.0.0.1]}
credentials:
  secrets:
    tok: {env: SURFACE_TEST_TOKEN}
    inl: {insecure_inline: inl-value-3e8a21f0}
    gone: {env: SURFACE_TEST_UNSET}
    spare: {file: spare.txt}
  bindings:
    - {id: b-tok, host: api.sec.test, path: /tok/**, secret: tok, insecure_http: true, header: {name: X-Key, value: "{{secret}}"}}
    - {id: b-both, host: api.sec.test, path: /both/**, insecure_http: true, header: {name: X-Key, value: "{{secret tok}}:{{secret inl}}"}}
    - {id: b-gone, host: api.sec.test, path: /gone/**, secret: gone, insecure_http: true, header: {name: X-Key, value: "{{secret}}"}}
`

const (
	surfaceToken = "tok-value-9f02c4e6b1"
	surfaceSpare = "spare-value-0d7b3a55"
)

// startSecretsAgentg serves secretsPolicy with an upstream that records
// the X-Key it gets.
func startSecretsAgentg(t *testing.T) (*testenv.Agentg, func(path string) (int, string)) {
	t.Helper()
	var mu sync.Mutex
	var lastKey string
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastKey = r.Header.Get("X-Key")
		mu.Unlock()
		io.WriteString(w, "ok")
	})})
	t.Cleanup(up.Close)
	dir := filepath.Join(t.TempDir(), "agentg")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "spare.txt"), []byte(surfaceSpare+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: dir, Policy: secretsPolicy,
		Env:  append(os.Environ(), "SURFACE_TEST_TOKEN="+surfaceToken),
		Args: []string{"--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	if n := testenv.Leaks(t).Values(); n != 3 {
		t.Fatalf("the leak check holds %d values, want the policy's 3 (env, inline, file)", n)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	return a, func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get("http://api.sec.test:" + up.Port + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		k := lastKey
		lastKey = ""
		return resp.StatusCode, k
	}
}

func secretsByName(t *testing.T, body []byte) map[string]admin.Secret {
	t.Helper()
	var l admin.List[admin.Secret]
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	out := map[string]admin.Secret{}
	for _, s := range l.Items {
		out[s.Name] = s
	}
	return out
}

func TestSecretsList(t *testing.T) {
	a, get := startSecretsAgentg(t)

	// Before any request: every secret listed and none used; the leak
	// guard has read every one it could when the policy loaded.
	waitLogLine(t, a.LogFile, `"guarded":["inl","spare","tok"]`)
	st, body, err := a.AdminGet("/v1/secrets")
	if err != nil || st != 200 {
		t.Fatalf("GET /v1/secrets: %d %v %s", st, err, body)
	}
	s := secretsByName(t, body)
	if len(s) != 4 {
		t.Fatalf("listed %d secrets, want 4: %s", len(s), body)
	}
	for name, want := range map[string]struct{ source, bindings string }{
		"tok": {"env SURFACE_TEST_TOKEN", "b-tok,b-both"}, "inl": {"insecure_inline", "b-both"},
		"gone": {"env SURFACE_TEST_UNSET", "b-gone"}, "spare": {"file " + filepath.Join(filepath.Dir(a.PolicyFile), "spare.txt"), ""},
	} {
		got := s[name]
		state := map[bool]string{true: "failed", false: "held"}[name == "gone"]
		if got.Source != want.source || strings.Join(got.Bindings, ",") != want.bindings || got.State != state || got.LastUse != nil {
			t.Errorf("%s before use: %+v, want source %q, bindings %q, %s, no last use", name, got, want.source, want.bindings, state)
		}
	}
	if !s["inl"].Inline || s["tok"].Inline {
		t.Errorf("insecure_inline marks: inl %v, tok %v", s["inl"].Inline, s["tok"].Inline)
	}
	// The token is the admin API's, like every other endpoint.
	if code, _ := adminGet(t, a.AdminAddr, "/v1/secrets", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/secrets without the token: %d, want 401", code)
	}

	// Use tok (alone, then with inl), and fail gone.
	before := time.Now().Add(-time.Second)
	if code, key := get("/tok/x"); code != 200 || key != surfaceToken {
		t.Fatalf("/tok/x: %d, the upstream got the right key: %v", code, key == surfaceToken)
	}
	if code, key := get("/both/x"); code != 200 || key != surfaceToken+":inl-value-3e8a21f0" {
		t.Fatalf("/both/x: %d", code)
	}
	if code, _ := get("/gone/x"); code != http.StatusBadGateway {
		t.Fatalf("/gone/x: %d, want 502", code)
	}
	_, body, _ = a.AdminGet("/v1/secrets")
	s = secretsByName(t, body)
	for _, name := range []string{"tok", "inl"} {
		if got := s[name]; got.State != "held" || got.LastUse == nil || got.LastUse.Before(before) || got.LastUse.After(time.Now().Add(time.Second)) {
			t.Errorf("%s after use: %+v", name, got)
		}
	}
	if got := s["gone"]; got.State != "failed" || !strings.Contains(got.Error, "secret gone (env SURFACE_TEST_UNSET): the environment variable is not set") || got.LastUse != nil {
		t.Errorf("gone after a failed read: %+v", got)
	}
	// The leak guard reads every secret when a policy loads: spare is
	// held, but never attached, so it has no last use.
	if got := s["spare"]; got.State != "held" || got.LastUse != nil {
		t.Errorf("spare, never used: %+v", got)
	}

	// The CLI, from the running agentg: a table, and --json.
	code, out, err := testenv.RunAgentg(t, agentgBin, nil, "secrets", "list", "--data-dir", a.DataDir)
	if err != nil || code != 0 {
		t.Fatalf("secrets list: %d %v\n%s", code, err, out)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "secrets of the agentg at "+a.AdminAddr) {
		t.Errorf("secrets list says it read %q", lines[0])
	}
	for _, want := range []string{"NAME", "tok", "env SURFACE_TEST_TOKEN", "b-tok,b-both", "gone", "secret gone (env SURFACE_TEST_UNSET)", "spare", "(none)", " ago)"} {
		if !strings.Contains(out, want) {
			t.Errorf("secrets list lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = testenv.RunAgentg(t, agentgBin, nil, "secrets", "list", "--json", "--data-dir", a.DataDir)
	if js := secretsByName(t, []byte(out)); code != 0 || len(js) != 4 || js["tok"].LastUse == nil {
		t.Errorf("secrets list --json: %d\n%s", code, out)
	}

	// A reload keeps the last use.
	tok, _ := a.AdminToken()
	ac, _ := admin.NewClient(a.AdminAddr, tok)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ac.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	_, body, _ = a.AdminGet("/v1/secrets")
	// The new load reads afresh (in the background, for the leak guard:
	// unread or held by now), and the last use is kept.
	if got := secretsByName(t, body)["tok"]; got.LastUse == nil || got.State != "unread" && got.State != "held" {
		t.Errorf("tok after a reload: %+v, want its last use kept", got)
	}

	// With no agentg to ask: from the policy, with no state; or an error
	// that says what to do.
	code, out, _ = testenv.RunAgentg(t, agentgBin, nil, "secrets", "list", "--admin", "off", "--policy", a.PolicyFile)
	if code != 0 || !strings.Contains(out, "no running agentg: nothing read, last use unknown") || !strings.Contains(out, "file ") || strings.Contains(out, " ago)") {
		t.Errorf("secrets list --policy: %d\n%s", code, out)
	}
	code, out, _ = testenv.RunAgentg(t, agentgBin, nil, "secrets", "list", "--admin", "off")
	if code != 1 || !strings.Contains(out, "--policy FILE") {
		t.Errorf("secrets list with nothing to read: %d\n%s", code, out)
	}
	code, _, _ = testenv.RunAgentg(t, agentgBin, nil, "secrets", "show")
	if code != 2 {
		t.Errorf("secrets show: exit %d, want 2", code)
	}
	// The other answers agentg gives about this traffic, and check's
	// explanation of it, go to the leak check too.
	for _, path := range []string{"/metrics", "/v1/rules", "/v1/events?last=1000&follow=false"} {
		if st, _, err := a.AdminGet(path); err != nil || st != 200 {
			t.Errorf("GET %s: %d %v", path, st, err)
		}
	}
	if code, out, _ := testenv.RunAgentg(t, agentgBin, nil, "check", a.PolicyFile, "--request", "GET http://api.sec.test/both/x"); code != 0 || !strings.Contains(out, "binding=b-both") {
		t.Errorf("check --request: %d\n%s", code, out)
	}
	// The leak check greps all of the above, and agentg's log, stderr and
	// data directory, for the three values.
}

func TestSecretsConsole(t *testing.T) {
	a, get := startSecretsAgentg(t)
	b := startBrowser(t)
	tok, err := a.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/tok/x"); code != 200 {
		t.Fatalf("/tok/x: %d", code)
	}
	if code, _ := get("/gone/x"); code != http.StatusBadGateway {
		t.Fatalf("/gone/x: %d", code)
	}
	b.signIn(t, a.AdminAddr, tok)
	b.do(t, "open secrets", chromedp.Click(chromedp.CSS(`#nav a[data-view="secrets"]`)))
	row := func(name string) string {
		return `document.querySelector('#secrets-table tr[data-secret="` + name + `"]')`
	}
	b.waitJS(t, "the used secret held, with its bindings and a last use",
		row("tok")+` && `+row("tok")+`.dataset.state === 'held' && `+row("tok")+`.textContent.includes('env SURFACE_TEST_TOKEN') && `+
			row("tok")+`.textContent.includes('b-tok, b-both') && `+row("tok")+`.querySelector('td.last-use time') !== null`)
	b.waitJS(t, "the unreadable secret failed, with why",
		row("gone")+` && `+row("gone")+`.dataset.state === 'failed' && `+row("gone")+`.textContent.includes('the environment variable is not set')`)
	b.waitJS(t, "the unused secret never used",
		row("spare")+` && `+row("spare")+`.querySelector('td.last-use').textContent === 'never' && `+row("spare")+`.textContent.includes('no binding')`)
	b.waitJS(t, "the inline secret marked", row("inl")+` && `+row("inl")+`.textContent.includes('inline')`)
	text := b.text()
	html := evalJS[string](t, b, `document.documentElement.outerHTML`)
	testenv.Leaks(t).Record("the console's page text", []byte(text))
	testenv.Leaks(t).Record("the console's page", []byte(html))
	if w := evalJS[float64](t, b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("the secrets view is %vpx wider than a 390px window", w)
	}
}

// On a terminal agentg passwd asks twice with echo off. The terminal is a
// real pseudo-terminal (util-linux script(1)); each answer is typed only
// once its prompt is shown, so echo is already off.
func TestPasswdTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give agentg passwd a terminal")
	}
	const pw = "tty-pw-5e0c2a9d71"
	testenv.Secrets(t, pw)
	run := func(first, second string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, scriptBin, "-q", "-e", "-c", agentgBin+" passwd", "/dev/null")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		outR, outW := io.Pipe()
		cmd.Stdout, cmd.Stderr = outW, outW
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var seen strings.Builder
		waitFor := func(prompt string) {
			t.Helper()
			buf := make([]byte, 256)
			for !strings.Contains(seen.String(), prompt) {
				n, err := outR.Read(buf)
				seen.Write(buf[:n])
				if err != nil {
					t.Fatalf("no prompt %q: %v; the terminal showed %q", prompt, err, seen.String())
				}
			}
		}
		waitFor("Password: ")
		io.WriteString(in, first+"\n")
		waitFor("Again: ")
		io.WriteString(in, second+"\n")
		done := make(chan struct{})
		go func() { io.Copy(&seen, outR); close(done) }()
		cmd.Wait()
		outW.Close()
		<-done
		in.Close()
		testenv.Leaks(t).Record("agentg passwd on a terminal", []byte(seen.String()))
		return seen.String()
	}
	out := run(pw, pw)
	i := strings.Index(out, "$argon2id$")
	if i < 0 {
		t.Fatalf("no hash on the terminal: %q", out)
	}
	hash := strings.Fields(out[i:])[0]
	e, err := rules.Parse("p.yaml", []byte("agents:\n  - name: a\n    password: \""+hash+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Agent(rules.Claim{User: "a", Password: pw}); got != "a" || err != nil {
		t.Errorf("the hash typed on the terminal does not take its password: %q %v", got, err)
	}
	// The leak check greps what the terminal showed for the password: echo was off.
	if out := run(pw, pw+"x"); !strings.Contains(out, "the passwords differ") || strings.Contains(out, "$argon2id$") {
		t.Errorf("two different answers: %q", out)
	}
}
