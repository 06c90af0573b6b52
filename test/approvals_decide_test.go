package test

// Issue 14, items 11-13: an approval's decision and its grant are one
// step (a deny that wins a race leaves no grant); a held call whose
// client went away is cancelled, not approvable; an HTTP approval is
// bound to its body, which the approver sees. agentg runs as its own
// process; the approvers are real clients of the admin API.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.seen[r.URL.Path] = append(e.seen[r.URL.Path], string(b))
		e.mu.Unlock()
		io.WriteString(w, "done\n")
	})})
	t.Cleanup(up.Close)
	e.adminAgentg = startAdminAgentg(t, testenv.AgentgConfig{Policy: policy, Args: args})
	e.proxied = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(e.URL())}}
	t.Cleanup(e.proxied.CloseIdleConnections)
	_, port, _ := strings.Cut(up.HostPort("127.0.0.1"), ":")
	e.base = "http://api.test:" + port
	return e
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
