package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The console shows a held HTTP request's body as agentg previews it
// (redacted, marked truncated), as text: markup in the body stays text
// and runs nothing, under the console's CSP. Issue 14 item 13.
func TestConsoleApprovalBody(t *testing.T) {
	policy := httpHoldPolicy + `mcp:
  redact:
    - pattern: "sk-[a-z0-9]{8}"
      id: api-keys
`
	e := startHTTPHoldEnv(t, policy)
	b := startBrowser(t)
	b.signIn(t, e.AdminAddr, e.token)
	b.do(t, "open approvals", chromedp.Click(chromedp.CSS(`#nav a[data-view="approvals"]`)))

	const path = "/deploy/console"
	body := `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> token=sk-abcd1234 ` + strings.Repeat("y", 5000)
	ch := e.post(path, body)
	ap, r := e.heldOrDone(t, e.base+path, ch)
	if ap == nil {
		t.Fatalf("not held: %+v", r)
	}
	card := `#approvals-list li.approval`
	b.waitJS(t, "the held request's body in the console",
		hasCard(card, "POST", path, `<img src=x onerror="window.pwned=1">`, "token=[REDACTED:api-keys]", "preview truncated", ap.BodySHA256[:16]))
	if evalJS[bool](t, b, `document.querySelector('#approvals-list li.approval').textContent.includes('sk-abcd1234')`) {
		t.Fatal("the console shows the secret the policy redacts")
	}
	if evalJS[bool](t, b, `!!document.querySelector('#approvals-list li.approval img, #approvals-list li.approval script') || window.pwned !== undefined`) {
		t.Fatal("markup in the body became markup in the console")
	}
	b.do(t, "deny", chromedp.Click(chromedp.CSS(card+" button.deny")))
	if r := await(t, ch); r.status != http.StatusForbidden || len(e.reached(path)) != 0 {
		t.Fatalf("denied from the console: %+v, the upstream saw %d", r, len(e.reached(path)))
	}
}
