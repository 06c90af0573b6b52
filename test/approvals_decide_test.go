package test

// Issue 14, items 11-13: an approval's decision and its grant are one
// step (a deny that wins a race leaves no grant); a held call whose
// client went away is cancelled, not approvable; an HTTP approval is
// bound to its body, which the approver sees. agentg runs as its own
// process; the approvers are real clients of the admin API.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// httpHoldPolicy holds POSTs to api.test/deploy/**; everything else on
// api.test passes (the marker requests).
const httpHoldPolicy = `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: api.test
resolve:
  api.test: [127.0.0.1]
http:
  - approve: "POST api.test/deploy/**"
    id: hold-deploy
    timeout: 60s
`

// httpHoldEnv is agentg holding HTTP requests for a loopback upstream
// that counts what reaches it, per path.
type httpHoldEnv struct {
	*adminAgentg
	proxied *http.Client
	base    string // http://api.test:PORT
	mu      sync.Mutex
	seen    map[string][]string // path → the bodies that reached the upstream
}

func startHTTPHoldEnv(t *testing.T, policy string, args ...string) *httpHoldEnv {
	t.Helper()
	e := &httpHoldEnv{seen: map[string][]string{}}
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(e.handler)})
	t.Cleanup(up.Close)
	e.adminAgentg = startAdminAgentg(t, testenv.AgentgConfig{Policy: policy, Args: args})
	e.proxied = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(e.URL())}}
	t.Cleanup(e.proxied.CloseIdleConnections)
	_, port, _ := strings.Cut(up.HostPort("127.0.0.1"), ":")
	e.base = "http://api.test:" + port
	return e
}

// handler is the upstream's: it records each request's body by path.
func (e *httpHoldEnv) handler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.seen[r.URL.Path] = append(e.seen[r.URL.Path], string(b))
	e.mu.Unlock()
	io.WriteString(w, "done\n")
}

// reached is what reached the upstream at path.
func (e *httpHoldEnv) reached(path string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen[path]...)
}

type postResult struct {
	status int
	err    error
}

// post sends body to path through agentg in the background.
func (e *httpHoldEnv) post(path, body string) <-chan postResult {
	ch := make(chan postResult, 1)
	go func() {
		resp, err := e.proxied.Post(e.base+path, "text/plain", strings.NewReader(body))
		if err != nil {
			ch <- postResult{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ch <- postResult{status: resp.StatusCode}
	}()
	return ch
}

// heldOrDone waits until a pending approval for url appears (returned)
// or the request ends first (its result returned).
func (e *httpHoldEnv) heldOrDone(t *testing.T, url string, ch <-chan postResult) (*admin.Approval, *postResult) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case r := <-ch:
			return nil, &r
		default:
		}
		items, err := e.client.Approvals(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for i := range items {
			if items[i].URL == url {
				return &items[i], nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s was neither held nor answered", url)
	return nil, nil
}

func await(t *testing.T, ch <-chan postResult) postResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the held request never ended")
	}
	return postResult{}
}

// Approvers race: an approve that remembers (agent-tool) against a deny,
// on the same pending approval, over the admin API. Whichever wins, the
// identical request afterwards passes by grant exactly when the approve
// won; when the deny won it is held again. (Issue 14 item 11: the grant
// was stored before the decision and kept when the deny won.)
func TestApprovalDenyRacingGrant(t *testing.T) {
	e := startHTTPHoldEnv(t, httpHoldPolicy)
	const trials = 300
	denyWon, approveWon := 0, 0
	for i := range trials {
		path := fmt.Sprintf("/deploy/race-%d", i)
		url := e.base + path
		ap, done := e.heldOrDone(t, url, e.post(path, "ship"))
		if ap == nil {
			t.Fatalf("trial %d: not held: %+v", i, done)
		}
		var aerr, derr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, aerr = e.client.Approve(context.Background(), ap.ID, admin.ApproveRequest{Scope: "agent-tool", For: "10m"})
		}()
		go func() {
			defer wg.Done()
			<-start
			_, derr = e.client.Deny(context.Background(), ap.ID, "race")
		}()
		close(start)
		wg.Wait()
		if (aerr == nil) == (derr == nil) {
			t.Fatalf("trial %d: approve %v, deny %v: exactly one must win", i, aerr, derr)
		}
		var apiErr *admin.APIError
		if lost := errors.Join(aerr, derr); !errors.As(lost, &apiErr) || apiErr.Status != http.StatusConflict {
			t.Fatalf("trial %d: the loser got %v, want 409", i, lost)
		}
		// The identical request again.
		again := e.post(path, "ship")
		held, r := e.heldOrDone(t, url, again)
		if aerr != nil {
			denyWon++
			if held == nil {
				t.Fatalf("trial %d: the deny won, yet the identical request was answered %+v without being held (passed by grant)", i, *r)
			}
			if _, err := e.client.Deny(context.Background(), held.ID, "trial over"); err != nil {
				t.Fatal(err)
			}
			if r := await(t, again); r.status != http.StatusForbidden {
				t.Fatalf("trial %d: denied again: %+v", i, r)
			}
			if n := len(e.reached(path)); n != 0 {
				t.Fatalf("trial %d: the deny won, yet the upstream saw %s %d times", i, path, n)
			}
			continue
		}
		approveWon++
		if held != nil || r.status != http.StatusOK {
			t.Fatalf("trial %d: the approve won, yet its grant did not pass the identical request (held %v, %+v)", i, held, r)
		}
	}
	t.Logf("%d trials: the deny won %d, the approve %d", trials, denyWon, approveWon)
}

// A grant remembered for an HTTP request's body passes that body only:
// the same method and URL with another body is held again. (Issue 14
// item 13: approvals were keyed by method and URL, so an agent-tool grant
// let any body through for its lifetime.)
func TestApprovalHTTPGrantBindsBody(t *testing.T) {
	e := startHTTPHoldEnv(t, httpHoldPolicy)
	const path = "/deploy/web"
	url := e.base + path
	ap, r := e.heldOrDone(t, url, e.post(path, `{"image":"web:1"}`))
	if ap == nil {
		t.Fatalf("not held: %+v", r)
	}
	first := e.post(path, `{"image":"web:1"}`) // the same, asked again while held
	if _, err := e.client.Approve(context.Background(), ap.ID, admin.ApproveRequest{Scope: "agent-tool", For: "10m"}); err != nil {
		t.Fatal(err)
	}
	if r := await(t, first); r.status != http.StatusOK {
		t.Fatalf("the same body, held before the grant: %+v", r)
	}
	if held, r := e.heldOrDone(t, url, e.post(path, `{"image":"web:1"}`)); held != nil || r.status != http.StatusOK {
		t.Fatalf("the same body after the grant: held %+v, answer %+v", held, r)
	}
	for _, other := range []string{`{"image":"evil:1"}`, ``, `{"image":"web:1"} `} {
		ch := e.post(path, other)
		held, r := e.heldOrDone(t, url, ch)
		if held == nil {
			t.Fatalf("the grant for one body passed body %q: %+v", other, r)
		}
		if _, err := e.client.Deny(context.Background(), held.ID, "other body"); err != nil {
			t.Fatal(err)
		}
		if r := await(t, ch); r.status != http.StatusForbidden {
			t.Fatalf("body %q denied: %+v", other, r)
		}
	}
	got := e.reached(path)
	if len(got) != 3 || got[0] != `{"image":"web:1"}` || got[1] != got[0] || got[2] != got[0] {
		t.Fatalf("the upstream got %q, want the approved body three times", got)
	}
}

// The approver sees what a held request would send: a preview of its
// body, bounded (4 KiB, marked truncated), redacted with the policy's
// redact patterns, with its size and SHA-256, in the admin API, the
// webhook's notification and `agentg approvals list`.
func TestApprovalHTTPBodyPreview(t *testing.T) {
	secret := "webhook-secret-0123456789"
	hooks := make(chan []byte, 4)
	recv := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- b
	})})
	t.Cleanup(recv.Close)
	secretFile := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := httpHoldPolicy + `mcp:
  redact:
    - pattern: "sk-[a-z0-9]{8}"
      id: api-keys
`
	e := startHTTPHoldEnv(t, policy, "--approvals-webhook", "http://"+recv.HostPort("127.0.0.1")+"/hook",
		"--approvals-webhook-secret-file", secretFile)
	body := "token=sk-abcd1234 \x1b[2J<script>alert(1)</script>\xff " + strings.Repeat("x", 5000) + " tail-marker"
	sum := sha256.Sum256([]byte(body))
	const path = "/deploy/preview"
	ch := e.post(path, body)
	ap, r := e.heldOrDone(t, e.base+path, ch)
	if ap == nil {
		t.Fatalf("not held: %+v", r)
	}
	check := func(where string, a admin.Approval) {
		t.Helper()
		switch {
		case strings.Contains(a.Body, "sk-abcd1234") || !strings.Contains(a.Body, "token=[REDACTED:api-keys]"):
			t.Errorf("%s: the preview is not redacted: %.80q", where, a.Body)
		case !a.BodyTruncated || len(a.Body) > 4096 || strings.Contains(a.Body, "tail-marker"):
			t.Errorf("%s: preview of %d bytes, truncated %v, want at most 4096 and truncated", where, len(a.Body), a.BodyTruncated)
		case a.BodySize != int64(len(body)) || a.BodySHA256 != hex.EncodeToString(sum[:]):
			t.Errorf("%s: body size %d sha256 %s, want %d %x", where, a.BodySize, a.BodySHA256, len(body), sum)
		case !strings.Contains(a.Body, `\xff`) || !strings.Contains(a.Body, "<script>"):
			t.Errorf("%s: the preview does not show the body's bytes as they are: %.120q", where, a.Body)
		}
	}
	check("list", *ap)
	got, err := e.client.Approval(context.Background(), ap.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("get", got)
	select {
	case b := <-hooks:
		var n struct {
			Approval admin.Approval `json:"approval"`
		}
		if err := json.Unmarshal(b, &n); err != nil || n.Approval.ID != ap.ID {
			t.Fatalf("webhook notification %.200s: %v", b, err)
		}
		check("webhook", n.Approval)
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook notification")
	}
	out, err := exec.Command(agentgBin, "approvals", "list", "--admin", e.AdminAddr, "--data-dir", e.DataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("agentg approvals list: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, ap.ID+" body: ") || !strings.Contains(s, "token=[REDACTED:api-keys]") ||
		!strings.Contains(s, "[truncated: the preview shows") || strings.Contains(s, "sk-abcd1234") ||
		strings.ContainsRune(s, 0x1b) || !strings.Contains(s, `\x1b[2J`) {
		t.Fatalf("agentg approvals list:\n%.600s", s)
	}
	if _, err := e.client.Deny(context.Background(), ap.ID, ""); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.status != http.StatusForbidden || len(e.reached(path)) != 0 {
		t.Fatalf("denied: %+v, the upstream saw %d", r, len(e.reached(path)))
	}
}

// A body over the bound (1 MiB) is not held, so no grant can cover a
// body agentg did not digest: it is refused 413, with a deny event, and
// never reaches the upstream, whether its length is declared or chunked.
func TestApprovalHTTPBodyOverBound(t *testing.T) {
	e := startHTTPHoldEnv(t, httpHoldPolicy)
	big := strings.Repeat("z", 1<<20+1)
	for _, c := range []struct {
		name string
		body io.Reader
	}{
		{"content-length", strings.NewReader(big)},
		{"chunked", io.MultiReader(strings.NewReader(big))}, // no length known: sent chunked
	} {
		t.Run(c.name, func(t *testing.T) {
			path := "/deploy/big-" + c.name
			resp, err := e.proxied.Post(e.base+path, "text/plain", c.body)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("a body over 1 MiB: %d, want 413", resp.StatusCode)
			}
			if items, _ := e.client.Approvals(context.Background()); len(items) != 0 {
				t.Fatalf("held: %+v", items)
			}
			// A request under the bound on the same upstream passes the
			// rule's hold as usual: a marker that it was reachable.
			if resp, err := e.proxied.Get(e.base + "/marker-" + c.name); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("marker: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			if len(e.reached("/marker-"+c.name)) != 1 || len(e.reached(path)) != 0 {
				t.Fatalf("upstream saw marker %d, big body %d", len(e.reached("/marker-"+c.name)), len(e.reached(path)))
			}
		})
	}
	var evs []map[string]any
	waitFor(t, func() bool {
		evs = nil
		for _, ev := range readLog(t, e.LogFile) {
			if ev["kind"] == "http" && strings.HasPrefix(fmt.Sprint(ev["path"]), "/deploy/big-") {
				evs = append(evs, ev)
			}
		}
		return len(evs) == 2
	}, "the events of the two requests over the bound")
	for _, ev := range evs {
		if ev["decision"] != "deny" || ev["status"] != float64(413) || ev["rule"] != "hold-deploy" {
			t.Errorf("event of a body over the bound: %v", ev)
		}
	}
}

// A body sent gzip-encoded is shown to the approver decoded (so that no
// coding hides it), and goes upstream as sent once approved; a coding
// agentg cannot decode is refused 415, never held.
func TestApprovalHTTPBodyEncoded(t *testing.T) {
	e := startHTTPHoldEnv(t, httpHoldPolicy)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, `{"image":"evil:9"}`)
	zw.Close()
	sent := buf.String()
	post := func(path, coding, body string) <-chan postResult {
		ch := make(chan postResult, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(body))
			req.Header.Set("Content-Encoding", coding)
			resp, err := e.proxied.Do(req)
			if err != nil {
				ch <- postResult{err: err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ch <- postResult{status: resp.StatusCode}
		}()
		return ch
	}
	const path = "/deploy/gz"
	ch := post(path, "gzip", sent)
	ap, r := e.heldOrDone(t, e.base+path, ch)
	if ap == nil {
		t.Fatalf("not held: %+v", r)
	}
	sum := sha256.Sum256([]byte(sent))
	if ap.Body != `{"image":"evil:9"}` || ap.BodyEncoding != "gzip" || ap.BodySize != int64(len(sent)) || ap.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the approver sees %q (encoding %q, size %d, sha256 %s)", ap.Body, ap.BodyEncoding, ap.BodySize, ap.BodySHA256)
	}
	if _, err := e.client.Approve(context.Background(), ap.ID, admin.ApproveRequest{}); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.status != http.StatusOK {
		t.Fatalf("approved: %+v", r)
	}
	if got := e.reached(path); len(got) != 1 || got[0] != sent {
		t.Fatalf("the upstream got %q, want the body as sent", got)
	}
	if r := await(t, post("/deploy/br", "br", "\x1b\x00\x00")); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("a coding agentg cannot decode: %+v, want 415", r)
	}
	if items, _ := e.client.Approvals(context.Background()); len(items) != 0 || len(e.reached("/deploy/br")) != 0 {
		t.Fatalf("held %+v, upstream %d", items, len(e.reached("/deploy/br")))
	}
}
