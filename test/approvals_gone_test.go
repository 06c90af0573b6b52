package test

// Issue 14 item 12: a held call whose client has gone is cancelled, on
// every framing: the approval ends cancelled (by "client"), approving it
// then is refused (409), and nothing reaches the upstream. Each case's
// evidence is positive: the approval reads cancelled, and a later marker
// request on the same upstream is seen while the held one never is.

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// awaitCancelled waits until approval id reads cancelled, then checks
// that it can no longer be approved.
func awaitCancelled(t *testing.T, c *admin.Client, id string) admin.Approval {
	t.Helper()
	var a admin.Approval
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if a, err = c.Approval(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if a.State != "pending" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("approval %s is still pending 10s after its client went away", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.State != "cancelled" || a.By != "client" {
		t.Fatalf("approval after the client went away: %+v, want cancelled by client", a)
	}
	_, err := c.Approve(context.Background(), id, admin.ApproveRequest{})
	var apiErr *admin.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("approving a cancelled approval: %v, want 409", err)
	}
	return a
}

// awaitRequestEvent waits for the event of the request held as approval
// id (not the approval's own events) and returns it.
func awaitRequestEvent(t *testing.T, a *testenv.Agentg, id string) map[string]any {
	t.Helper()
	return waitEventOf(t, a, "for the request held as "+id, func(ev map[string]any) bool {
		return ev["approval"] == id && ev["kind"] != "approval"
	})
}

// HTTP requests held by an http approve rule: plain HTTP on the explicit
// listener, and HTTPS intercepted, over HTTP/1.1 and HTTP/2; a POST with
// a body and a GET without one.
func TestApprovalClientGoneHTTP(t *testing.T) {
	upCA, err := testenv.NewCA("approvals upstream root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	leaf, err := upCA.Leaf([]string{"api.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	policy := httpHoldPolicy + `  - approve: "GET api.test/deploy/**"
    id: hold-deploy-get
intercept: [api.test]
`
	e := startHTTPHoldEnv(t, policy, "--upstream-ca", caFile)
	tlsUp := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &leaf, HTTP2: true, Handler: http.HandlerFunc(e.handler)})
	t.Cleanup(tlsUp.Close)
	pool, err := e.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		base   string
		h2     bool
		proto  int
		method string
	}{
		{"plain http", e.base, false, 1, http.MethodPost},
		{"intercepted h1", "https://api.test:" + tlsUp.Port, false, 1, http.MethodPost},
		{"intercepted h2", "https://api.test:" + tlsUp.Port, true, 2, http.MethodPost},
		{"plain http GET", e.base, false, 1, http.MethodGet},
		{"intercepted h1 GET", "https://api.test:" + tlsUp.Port, false, 1, http.MethodGet},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := &http.Transport{Proxy: http.ProxyURL(e.URL()), ForceAttemptHTTP2: c.h2,
				TLSClientConfig: &tls.Config{RootCAs: pool}}
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			path := "/deploy/gone-" + strings.ReplaceAll(c.name, " ", "-")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				var body io.Reader
				if c.method == http.MethodPost {
					body = strings.NewReader("ship it")
				}
				req, _ := http.NewRequestWithContext(ctx, c.method, c.base+path, body)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			ap, r := e.heldOrDone(t, c.base+path, nil)
			if ap == nil {
				t.Fatalf("not held: %+v", r)
			}
			// The client sent its body; now it goes away.
			cancel()
			if err := <-done; err == nil {
				t.Fatal("the client's request did not end with its cancellation")
			}
			awaitCancelled(t, e.client, ap.ID)
			if ev := awaitRequestEvent(t, e.Agentg, ap.ID); ev["status"] != float64(499) || ev["decision"] != "deny" {
				t.Fatalf("the held request's event: %v, want status 499, deny", ev)
			}
			// A later request on the same upstream is seen; the held
			// one never was.
			resp, err := client.Get(c.base + "/marker-" + strings.ReplaceAll(c.name, " ", "-"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != c.proto {
				t.Fatalf("marker: %d over HTTP/%d, want 200 over HTTP/%d", resp.StatusCode, resp.ProtoMajor, c.proto)
			}
			if len(e.reached(resp.Request.URL.Path)) != 1 {
				t.Fatal("the upstream did not see the marker")
			}
			if got := e.reached(path); len(got) != 0 {
				t.Fatalf("the upstream got the cancelled request: %q", got)
			}
		})
	}
}

// tools/call held by an MCP approve rule, on each way the client can
// wait: an event stream agentg opens at once, JSON only (nothing until
// decided), HTTP/2, and a 2024-11-05 POST.
func TestApprovalClientGoneMCP(t *testing.T) {
	modes := []testenv.MCPMode{testenv.MCPStateful, testenv.MCPStatefulJSON, testenv.MCPLegacySSE}
	e := startApprovalEnv(t, approvalPolicy, nil, modes...)
	for _, c := range []struct {
		name   string
		mode   testenv.MCPMode
		rev    string
		accept string
		h2     bool
		coding string // Content-Encoding of the POST
	}{
		{"sse", testenv.MCPStateful, "2025-11-25", "application/json, text/event-stream", false, ""},
		{"json", testenv.MCPStatefulJSON, "2025-11-25", "application/json", false, ""},
		{"h2", testenv.MCPStateful, "2025-11-25", "application/json, text/event-stream", true, ""},
		{"legacy", testenv.MCPLegacySSE, "2024-11-05", "application/json, text/event-stream", false, ""},
		// A zlib stream ends before its body does (a trailing byte
		// here): the hold must still see the client go.
		{"json deflate", testenv.MCPStatefulJSON, "2025-11-25", "application/json", false, "deflate"},
		{"json gzip", testenv.MCPStatefulJSON, "2025-11-25", "application/json", false, "gzip"},
	} {
		t.Run(c.name, func(t *testing.T) {
			via := e.via
			via.HTTP2 = c.h2
			srv := e.servers[c.mode]
			raw := testenv.NewMCPRaw(testenv.MCPHTTPClient(via), c.mode, srv.URL, c.rev)
			t.Cleanup(raw.Close)
			if err := raw.Open(mcpCtx(t)); err != nil {
				t.Fatal(err)
			}
			before, markers := srv.Calls(testenv.MCPToolEcho), srv.Calls(testenv.MCPToolDotted)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h := raw.Headers("tools/call", testenv.MCPToolEcho)
				h.Set("Accept", c.accept)
				body := encodeBody(t, c.coding, raw.Request("7", "tools/call", map[string]any{"name": testenv.MCPToolEcho, "arguments": map[string]any{"gone": c.name}}))
				if c.coding != "" {
					h.Set("Content-Encoding", c.coding)
				}
				// How the client library reports its own cancellation
				// (an error, or the end of a stream already open) is
				// its business; the approval's state is agentg's.
				raw.Post(ctx, testenv.MCPPost{Header: h, Body: body})
			}()
			a := e.pending(t, 1)[0]
			cancel()
			<-done
			awaitCancelled(t, e.client, a.ID)
			waitApprovalEvent(t, e.Agentg, a.ID, "cancelled")
			if ev := awaitRequestEvent(t, e.Agentg, a.ID); ev["status"] != float64(499) || ev["decision"] != "deny" || ev["approval_by"] != "client" {
				t.Fatalf("the held call's event: %v, want status 499, deny by client", ev)
			}
			// A later call on the same server runs; the held one never did.
			reply, err := raw.Call(mcpCtx(t), "8", "tools/call", map[string]any{"name": testenv.MCPToolDotted, "arguments": map[string]any{"m": 1}})
			if err != nil {
				t.Fatal(err)
			}
			if c.mode == testenv.MCPLegacySSE {
				if _, err := raw.Await(mcpCtx(t), "8"); err != nil {
					t.Fatalf("marker on the legacy stream: %v", err)
				}
			} else if reply.ByID("8") == nil {
				t.Fatalf("marker answer: %d %s", reply.Status, reply.Body)
			}
			if n := srv.Calls(testenv.MCPToolDotted); n != markers+1 {
				t.Fatal("the server did not run the marker call")
			}
			if n := srv.Calls(testenv.MCPToolEcho); n != before {
				t.Fatalf("the server ran the cancelled call (%d)", n-before)
			}
		})
	}
}

// encodeBody compresses b with coding ("" leaves it); a zlib stream gets
// a trailing byte after its end, which a decoder that stops at the end of
// the stream never reads.
func encodeBody(t *testing.T, coding string, b []byte) []byte {
	var buf bytes.Buffer
	switch coding {
	case "":
		return b
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
	case "deflate":
		zw := zlib.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		buf.WriteByte('\n')
	default:
		t.Fatalf("coding %q", coding)
	}
	return buf.Bytes()
}
