package test

// Issue 10, the web console: the real binary's admin listener serves it,
// a real headless Chromium (Debian's chromium, driven by chromedp) opens
// it at a phone's width, signs in with the token, and sees what real
// traffic through the proxy and a Go SDK MCP client produce: live events
// (MCP arguments as redacted), the inventory with a changed pin accepted
// by a click, rule hits, and a held call approved by a click.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/rules"
)

// browser is one headless Chromium with one tab.
type browser struct {
	ctx context.Context
}

// startBrowser starts Chromium with a fresh profile, at a phone's width,
// or skips the test when there is none (scripts/test.sh installs
// Debian's chromium as root).
func startBrowser(t *testing.T) *browser {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium to test the console in: install Debian's chromium (scripts/test.sh does, as root)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true), // whatever the environment says: only the loopback admin listener
		chromedp.WindowSize(390, 844),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{ctx: ctx}
}

// do runs steps, failing with what the page shows.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, b.text())
	}
}

// waitJS waits until the JavaScript expression is true.
func (b *browser) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, b.text())
	}
}

// eval evaluates a JavaScript expression into T.
func evalJS[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is what the page shows, for failure messages.
func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// signIn opens the console and signs in with token.
func (b *browser) signIn(t *testing.T, adminAddr, token string) {
	t.Helper()
	b.do(t, "open the console and sign in",
		chromedp.Navigate("http://"+adminAddr+admin.ConsolePath),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#nav")),
	)
}

// hasCard is JavaScript: some card of list (a CSS selector of li
// elements) whose text includes every one of parts.
func hasCard(sel string, parts ...string) string {
	p, _ := json.Marshal(parts)
	return fmt.Sprintf(`[...document.querySelectorAll(%q)].some(li => %s.every(p => li.textContent.includes(p)))`, sel, p)
}

func TestConsoleBrowser(t *testing.T) {
	e := startMCPAdmin(t, "  pinning: deny\n  redact:\n    - pattern: \"AKIA[0-9A-Z]{16}\"\n      id: aws-keys\n")
	b := startBrowser(t)

	// A wrong token is refused and not kept; the right one opens the
	// views, and the event stream is live.
	b.do(t, "open the console",
		chromedp.Navigate("http://"+e.AdminAddr+admin.ConsolePath),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token-0123456789"),
		chromedp.Click(chromedp.CSS("#signin")),
	)
	b.waitJS(t, "the wrong token refused", `document.querySelector('#login-error').textContent.includes('refused') && document.querySelector('#nav').hidden`)
	if evalJS[bool](t, b, `sessionStorage.length === 0`) != true {
		t.Fatal("a refused token stayed in sessionStorage")
	}
	b.signIn(t, e.AdminAddr, e.token)
	b.waitJS(t, "the event stream live", `document.querySelector('#events-status').textContent === 'live'`)

	// Real traffic through the proxy appears as it happens.
	proxied := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(e.URL())}}
	resp, err := proxied.Get("http://denied.test/console-probe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied.test through the proxy: %d, want 403", resp.StatusCode)
	}
	b.waitJS(t, "the denied request in the live events",
		hasCard(`#events-list li[data-kind="http"][data-decision="deny"]`, "denied.test", "/console-probe", "default"))

	// MCP tool calls through the Go SDK, their arguments as redacted.
	changed, opts := changedHandler()
	via := e.via
	via.Options = opts
	cl, err := testenv.ConnectMCP(mcpCtx(t), e.server.Mode, e.server.URL, via)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	listAll(t, cl)
	args := map[string]any{"city": "Oslo"}
	res, err := callTool(t, cl, testenv.MCPToolMutable, args)
	wantEcho(t, res, err, args)
	const secret = "AKIA0123456789ABCDEF"
	if _, err := callTool(t, cl, testenv.MCPToolEcho, map[string]any{"city": secret}); err != nil {
		t.Fatal(err)
	}
	res, err = callTool(t, cl, testenv.MCPToolDelete, nil)
	wantDenied(t, res, err, "no-delete")
	b.waitJS(t, "the MCP call with its redacted arguments",
		hasCard(`#events-list li[data-kind="mcp"][data-decision="allow"]`, "srv", testenv.MCPToolEcho, "[REDACTED:aws-keys]"))
	b.waitJS(t, "the denied MCP call", hasCard(`#events-list li[data-kind="mcp"][data-decision="deny"]`, testenv.MCPToolDelete, "no-delete"))
	if strings.Contains(b.text(), secret) {
		t.Fatal("the console shows the secret the redact rule removed")
	}
	// At a phone's width nothing pushes the page sideways.
	if w := evalJS[float64](t, b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("the events view is %vpx wider than a 390px window", w)
	}

	// Until approvals exist, their view says so.
	b.do(t, "open approvals", chromedp.Click(chromedp.CSS(`#nav a[data-view="approvals"]`)))
	if code, _ := adminGet(t, e.AdminAddr, "/v1/approvals", "Bearer "+e.token); code == http.StatusNotFound {
		b.waitJS(t, "approvals not available", `document.querySelector('#approvals-note').textContent.includes('not available')`)
	}

	// The inventory; a rug pull shows the pin changed, and a click on
	// Accept lets the next call through.
	b.do(t, "open the MCP inventory", chromedp.Click(chromedp.CSS(`#nav a[data-view="mcp"]`)))
	row := fmt.Sprintf(`#mcp-servers article[data-server="srv"] tr[data-tool=%q]`, testenv.MCPToolMutable)
	b.waitJS(t, "the mutable tool in the inventory", fmt.Sprintf(`!!document.querySelector(%q)`, row))
	rugPull(t, e.server, cl, changed)
	res, err = callTool(t, cl, testenv.MCPToolMutable, args)
	wantPinDenied(t, res, err)
	b.do(t, "accept the changed pin",
		chromedp.WaitVisible(chromedp.CSS(row+".changed button.accept")),
		chromedp.Click(chromedp.CSS(row+".changed button.accept")),
	)
	b.waitJS(t, "the pin accepted", fmt.Sprintf(`document.querySelector('#mcp-note').textContent.includes('Accepted') && !!document.querySelector(%q) && !document.querySelector(%q)`, row, row+".changed"))
	res, err = callTool(t, cl, testenv.MCPToolMutable, args) // --reload-interval 0: only the click can have told it
	wantEcho(t, res, err, args)

	// Rule hits.
	b.do(t, "open the rules", chromedp.Click(chromedp.CSS(`#nav a[data-view="rules"]`)))
	b.waitJS(t, "no-delete's hit", `(() => { const c = document.querySelector('#rules-table tr[data-rule="no-delete"] .hits'); return !!c && Number(c.textContent) >= 1 })()`)
	b.waitJS(t, "default's hits", `(() => { const c = document.querySelector('#rules-table tr[data-rule="default"] .hits'); return !!c && Number(c.textContent) >= 1 })()`)

	// The token is kept for the tab: a reload stays signed in; signing
	// out forgets it.
	b.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#nav")))
	b.do(t, "sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	if evalJS[bool](t, b, `sessionStorage.length === 0`) != true {
		t.Fatal("signing out left the token in sessionStorage")
	}
}

// A call held for approval appears in the console; a click on Approve
// lets it reach the server, and the real result arrives.
func TestConsoleApproval(t *testing.T) {
	e := startMCPAdmin(t, "")
	if code, body := adminGet(t, e.AdminAddr, "/v1/approvals", "Bearer "+e.token); code != http.StatusOK {
		t.Fatalf("GET /v1/approvals: %d %s", code, body)
	}
	policy := mcpPolicy(mcpBase + "    - approve: \"srv." + testenv.MCPToolEcho + "\"\n      id: hold-echo\n")
	if err := os.WriteFile(e.PolicyFile, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Reload(context.Background()); err != nil {
		t.Fatalf("reload with an approve rule: %v", err)
	}
	b := startBrowser(t)
	b.signIn(t, e.AdminAddr, e.token)
	b.do(t, "open approvals", chromedp.Click(chromedp.CSS(`#nav a[data-view="approvals"]`)))

	cl := e.connect(t)
	listAll(t, cl)
	args := map[string]any{"city": "Bergen"}
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho, Arguments: args})
		done <- result{res, err}
	}()
	card := `#approvals-list li.approval`
	b.waitJS(t, "the held call in the console", hasCard(card, "srv", testenv.MCPToolEcho, "Bergen", "hold-echo"))
	select {
	case r := <-done:
		t.Fatalf("the held call completed before anyone approved it: %+v %v", r.res, r.err)
	default:
	}
	if n := e.server.Calls(testenv.MCPToolEcho); n != 0 {
		t.Fatalf("the server ran the held call %d times before the approval", n)
	}
	b.do(t, "approve", chromedp.Click(chromedp.CSS(card+" button.approve")))
	select {
	case r := <-done:
		wantEcho(t, r.res, r.err, args)
	case <-time.After(30 * time.Second):
		t.Fatal("the approved call did not complete")
	}
	b.waitJS(t, "the card gone", `!document.querySelector('#approvals-list li.approval') && document.querySelector('#approvals-note').textContent.includes('Approved')`)
}

// The console speaks the approvals contract: it lists what
// GET /v1/approvals holds, shows what a person decides on as text (a
// tool name that is markup stays text), and sends the scope and the
// reason the person chose. The API here is a recorder of that contract,
// mounted on a real admin server; TestConsoleApproval runs the real one.
func TestConsoleApprovalsContract(t *testing.T) {
	eng, err := rules.Parse("p.yaml", []byte("default: deny\n"))
	if err != nil {
		t.Fatal(err)
	}
	const token = "console-contract-token-0123456789"
	srv, err := admin.New(admin.Config{Token: token, Log: audit.New(io.Discard), Policy: fixedEngine{eng}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &approvalsRecorder{pending: map[string]map[string]any{
		"ap-1": {"id": "ap-1", "kind": "mcp", "agent": "builder", "server": "github", "tool": "merge_<img src=x onerror=alert(1)>",
			"args": `{"pr":7}`, "rule": "hold-merge", "created": time.Now().Format(time.RFC3339), "expires": time.Now().Add(2 * time.Minute).Format(time.RFC3339),
			"via": []string{"console"}, "state": "pending"},
		"ap-2": {"id": "ap-2", "kind": "http", "agent": "ci", "method": "POST", "url": "https://api.example/deploy/prod",
			"rule": "hold-deploy", "created": time.Now().Format(time.RFC3339), "state": "pending"},
	}, decided: map[string]string{}}
	// The recorder answers the approvals paths, with the token checked as
	// the admin server checks it; the console's files and everything
	// else are the real admin server's.
	authed := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, `{"error":{"code":"unauthorized","message":"no token"}}`, http.StatusUnauthorized)
				return
			}
			h(w, r)
		})
	}
	front := http.NewServeMux()
	front.Handle("GET /v1/approvals", authed(rec.list))
	front.Handle("POST /v1/approvals/{id}/{verb}", authed(rec.decide))
	front.Handle("/", srv)
	ln, err := admin.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: front}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	b := startBrowser(t)
	b.signIn(t, ln.Addr().String(), token)
	b.do(t, "open approvals", chromedp.Click(chromedp.CSS(`#nav a[data-view="approvals"]`)))
	card := func(id string) string { return fmt.Sprintf(`#approvals-list li.approval[data-id=%q]`, id) }
	b.waitJS(t, "both held calls", hasCard(card("ap-1"), "github", "merge_<img src=x onerror=alert(1)>", `{"pr":7}`, "builder", "hold-merge", "console")+" && "+
		hasCard(card("ap-2"), "POST https://api.example/deploy/prod", "ci", "hold-deploy"))
	if evalJS[bool](t, b, `!!document.querySelector('#approvals-list img')`) {
		t.Fatal("a tool name became markup in the console")
	}
	if got := evalJS[string](t, b, `document.querySelector('#approvals-count').textContent`); got != "2" {
		t.Errorf("approvals count %q, want 2", got)
	}

	// Approve the first for this agent and tool for 15 minutes.
	b.do(t, "choose agent+tool for 15 minutes",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = 'agent-tool'; s.dispatchEvent(new Event('change')); })()`, card("ap-1")+" select[name=scope]")),
		chromedp.WaitVisible(chromedp.CSS(card("ap-1")+" input[name=minutes]")),
		chromedp.Clear(chromedp.CSS(card("ap-1")+" input[name=minutes]")),
		chromedp.SendKeys(chromedp.CSS(card("ap-1")+" input[name=minutes]"), "15"),
		chromedp.Click(chromedp.CSS(card("ap-1")+" button.approve")),
	)
	b.waitJS(t, "the first card gone", fmt.Sprintf(`!document.querySelector(%q)`, card("ap-1")))
	// Deny the second, with a reason.
	b.do(t, "deny with a reason",
		chromedp.SendKeys(chromedp.CSS(card("ap-2")+" input[name=reason]"), "not on a Friday"),
		chromedp.Click(chromedp.CSS(card("ap-2")+" button.deny")),
	)
	b.waitJS(t, "the second card gone", fmt.Sprintf(`!document.querySelector(%q) && document.querySelector('#approvals-count').hidden`, card("ap-2")))
	want := map[string]string{
		"ap-1 approve": `{"for":"15m","scope":"agent-tool"}`,
		"ap-2 deny":    `{"reason":"not on a Friday"}`,
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.decided) != len(want) {
		t.Errorf("decisions sent %v, want %v", rec.decided, want)
	}
	for k, v := range want {
		if rec.decided[k] != v {
			t.Errorf("%s sent %s, want %s", k, rec.decided[k], v)
		}
	}
}

type fixedEngine struct{ e *rules.Engine }

func (f fixedEngine) Engine() *rules.Engine { return f.e }

// approvalsRecorder serves the approvals contract from a map and records
// each decision's body, re-encoded with sorted keys.
type approvalsRecorder struct {
	mu      sync.Mutex
	pending map[string]map[string]any
	decided map[string]string
}

func (a *approvalsRecorder) list(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	items := []map[string]any{}
	for _, it := range a.pending {
		items = append(items, it)
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"items": items})
}

func (a *approvalsRecorder) decide(w http.ResponseWriter, r *http.Request) {
	id, verb := r.PathValue("id"), r.PathValue("verb")
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || verb != "approve" && verb != "deny" {
		http.Error(w, `{"error":{"code":"bad_request","message":"bad body or verb"}}`, http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.pending[id]; !ok {
		http.Error(w, `{"error":{"code":"no_approval","message":"no such pending approval"}}`, http.StatusNotFound)
		return
	}
	delete(a.pending, id)
	enc, _ := json.Marshal(body)
	a.decided[id+" "+verb] = string(enc)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":%q,"state":%q}`, id, verb+"d")
}
