package test

// Issue 10, quotas beyond MCP: per agent and per host, requests per
// period and body bytes per period on plain HTTP(S) egress (429 with
// Retry-After, and an event), and the tunnels an agent may hold open, all
// from the policy, over real sockets.

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const quotaBase = `
default: deny
agents:
  - name: a
    password: pa
  - name: b
    password: pb
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [q.test, other.test]
resolve:
  q.test: [127.0.0.1]
  other.test: [127.0.0.1]
`

// sizedUpstream answers /size/N with N bytes and counts what reached it.
type sizedUpstream struct {
	*upstream
	hits atomic.Int64
	read atomic.Int64 // request body bytes it read
}

func newSizedUpstream(t *testing.T) *sizedUpstream {
	u := &sizedUpstream{}
	u.upstream = newUpstream(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		u.read.Add(n)
		size, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/size/"))
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := []byte(strings.Repeat("x", 4096))
		for size > 0 {
			k := min(size, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			size -= k
		}
	}))
	return u
}

func TestQuotaRequests(t *testing.T) {
	up := newSizedUpstream(t)
	e := startProxy(t, quotaBase+`
quotas:
  - agents: [a]
    hosts: [q.test]
    requests: 3/h
    id: a-requests
`, nil)
	a, b := e.client("a", "pa", nil), e.client("b", "pb", nil)
	url := func(host string) string { return "http://" + host + ":" + up.port + "/size/10" }
	for i := range 3 {
		if resp, _ := get(t, a, url("q.test")); resp.StatusCode != 200 {
			t.Fatalf("request %d of 3/h: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := get(t, a, url("q.test"))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-Agentg-Rule") != "a-requests" || !strings.Contains(body, "quota a-requests") {
		t.Fatalf("the 4th request of 3/h: %d %q %q, want 429 by a-requests", resp.StatusCode, resp.Header, body)
	}
	// 3/h refills one every 20 minutes.
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1190 || ra > 1200 {
		t.Errorf("Retry-After %q, want about 1200 seconds", resp.Header.Get("Retry-After"))
	}
	if n := up.hits.Load(); n != 3 {
		t.Errorf("the upstream saw %d requests, want 3: the refused one never left", n)
	}
	e.waitEvent(map[string]any{"agent": "a", "decision": "deny", "rule": "a-requests", "status": 429, "host": "q.test"})
	// Another host, another agent: their own budgets.
	if resp, _ := get(t, a, url("other.test")); resp.StatusCode != 200 {
		t.Errorf("agent a to other.test, which the quota does not cover: %d", resp.StatusCode)
	}
	for range 4 {
		if resp, _ := get(t, b, url("q.test")); resp.StatusCode != 200 {
			t.Fatalf("agent b, whom the quota does not cover: %d", resp.StatusCode)
		}
	}
}

// Bytes are the bodies both ways, counted as they flow: an answer that
// spends the quota is cut, the next request waits for the refill, and a
// request body that spends it is answered 429.
func TestQuotaBytes(t *testing.T) {
	up := newSizedUpstream(t)
	e := startProxy(t, quotaBase+`
quotas:
  - hosts: [q.test]
    bytes: 100KB/d
    id: q-bytes
`, nil)
	a := e.client("a", "pa", nil)
	u := "http://q.test:" + up.port
	if resp, body := get(t, a, u+"/size/60000"); resp.StatusCode != 200 || len(body) != 60000 {
		t.Fatalf("60 kB of a 100 kB quota: %d, %d bytes", resp.StatusCode, len(body))
	}
	// 40 kB left: this answer starts and is cut.
	resp, err := a.Get(u + "/size/400000")
	if err != nil {
		t.Fatal(err)
	}
	n, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if rerr == nil || n >= 400000 || n < 40000 {
		t.Fatalf("an answer of 400 kB with 40 kB of quota left: read %d bytes, err %v; want it cut past 40 kB", n, rerr)
	}
	e.waitEvent(map[string]any{"agent": "a", "decision": "deny", "rule": "q-bytes", "path": "/size/400000"})
	hits := up.hits.Load()
	resp, body := get(t, a, u+"/size/10")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Agentg-Rule") != "q-bytes" {
		t.Fatalf("a request after the quota is spent: %d %q %q, want 429 with Retry-After", resp.StatusCode, resp.Header, body)
	}
	if up.hits.Load() != hits {
		t.Error("the refused request reached the upstream")
	}
	e.waitEvent(map[string]any{"agent": "a", "decision": "deny", "rule": "q-bytes", "status": 429, "path": "/size/10"})

	// Agent b has a budget of its own; a request body spends it too.
	b := e.client("b", "pb", nil)
	resp, err = b.Post(u+"/size/0", "application/octet-stream", strings.NewReader(strings.Repeat("y", 300000)))
	if err != nil {
		t.Fatal(err)
	}
	body2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body2), "q-bytes") {
		t.Fatalf("a 300 kB request body with a 100 kB quota: %d %q, want 429", resp.StatusCode, body2)
	}
	if got := up.read.Load(); got >= 300000 {
		t.Errorf("the upstream read %d bytes of the body, want it cut before 300000", got)
	}
}

// connectAs opens a CONNECT tunnel as user and returns the connection
// and the answer's status.
func connectAs(t *testing.T, proxyAddr, user, pass, target string) (net.Conn, int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\nProxy-Authorization: Basic "+auth+"\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Time{})
	return c, resp.StatusCode
}

func TestQuotaTunnels(t *testing.T) {
	up := newSizedUpstream(t)
	e := startProxy(t, quotaBase+`
quotas:
  - agents: [a]
    tunnels: 2
    per: agent
    id: a-tunnels
`, nil)
	target := "q.test:" + up.port
	c1, s1 := connectAs(t, e.addr, "a", "pa", target)
	_, s2 := connectAs(t, e.addr, "a", "pa", "other.test:"+up.port)
	if s1 != 200 || s2 != 200 {
		t.Fatalf("two tunnels of a cap of 2: %d %d", s1, s2)
	}
	if _, s := connectAs(t, e.addr, "a", "pa", target); s != http.StatusServiceUnavailable {
		t.Fatalf("a third tunnel of a cap of 2: %d, want 503", s)
	}
	e.waitEvent(map[string]any{"agent": "a", "kind": "connect", "decision": "deny", "rule": "a-tunnels", "status": 503})
	for range 3 {
		if _, s := connectAs(t, e.addr, "b", "pb", target); s != 200 {
			t.Fatalf("agent b, whom the cap does not cover: %d", s)
		}
	}
	// A tunnel closed frees its place.
	c1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, s := connectAs(t, e.addr, "a", "pa", target)
		if s == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a tunnel: %d, want 200", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
