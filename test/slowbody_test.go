package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// slowClient opens a connection to addr, sends head (which declares a
// body of bodyLen bytes), then one byte of the body every interval from
// its own goroutine, until the body is complete or the connection fails.
// sent counts the body bytes written.
type slowClient struct {
	c    net.Conn
	br   *bufio.Reader
	sent atomic.Int64
	done chan struct{}
}

func startSlowClient(t *testing.T, addr, head string, bodyLen int, interval time.Duration) *slowClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	s := &slowClient{c: c, br: bufio.NewReader(c), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for range bodyLen {
			<-tick.C
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			s.sent.Add(1)
		}
	}()
	return s
}

// answer reads the response to the slow request, within wait.
func (s *slowClient) answer(t *testing.T, wait time.Duration) (*http.Response, string) {
	t.Helper()
	s.c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		t.Fatalf("no answer within %s while the body was still coming (%d bytes of it sent): %v", wait, s.sent.Load(), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

const slowBodyLen = 40 // bytes, one per slowInterval: 10 s to send whole
const slowInterval = 250 * time.Millisecond

// An unauthenticated admin API request whose body comes slowly is
// answered 401 at once, before its body is complete, and the connection
// closes.
func TestAdminRefusesSlowBodyAtOnce(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: loopbackOpen})
	for _, path := range []string{"/v1/policy/reload", "/no-such-path", "/v1/approvals/x/approve"} {
		s := startSlowClient(t, a.AdminAddr, "POST "+path+" HTTP/1.1\r\nHost: agentg\r\nContent-Type: application/json\r\nContent-Length: "+itoa(slowBodyLen)+"\r\n\r\n", slowBodyLen, slowInterval)
		resp, body := s.answer(t, 3*time.Second)
		sent := s.sent.Load()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without the token: %d %q, want 401", path, resp.StatusCode, body)
		}
		if sent >= slowBodyLen {
			t.Errorf("POST %s: the 401 came only after the whole body", path)
		}
		if !resp.Close {
			t.Errorf("POST %s: the 401 to a request whose body was not read keeps the connection (no Connection: close)", path)
		}
	}
}

// A request the proxy refuses, whose body comes slowly, is answered 403
// at once, before its body is complete: absolute-form, and inside an
// intercepted tunnel.
func TestProxyRefusesSlowBodyAtOnce(t *testing.T) {
	a, stderr := startRobustAgentg(t, exchangeEndPolicy+`
http:
  - deny: "* mcp.test/refused/**"
    id: no-refused
`)
	s := startSlowClient(t, a.Addr, "POST http://denied.test:80/x HTTP/1.1\r\nHost: denied.test:80\r\nContent-Length: "+itoa(slowBodyLen)+"\r\n\r\n", slowBodyLen, slowInterval)
	resp, body := s.answer(t, 3*time.Second)
	if resp.StatusCode != http.StatusForbidden || s.sent.Load() >= slowBodyLen {
		t.Errorf("POST to denied.test with a slow body: %d %q after %d of %d body bytes, want 403 before the body is complete",
			resp.StatusCode, body, s.sent.Load(), slowBodyLen)
	}

	// Inside an intercepted tunnel (plaintext HTTP/1), an HTTP rule's
	// refusal.
	up := testenv.StartUpstream(testenv.UpstreamOptions{})
	defer up.Close()
	host := "mcp.test:" + up.Port
	c, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if resp, _ := keptAliveExchange(t, a, c, br, "CONNECT "+host+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	io.WriteString(c, "POST /refused/x HTTP/1.1\r\nHost: "+host+"\r\nContent-Length: "+itoa(slowBodyLen)+"\r\n\r\n")
	var sent atomic.Int64
	go func() {
		for range slowBodyLen {
			time.Sleep(slowInterval)
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer in the tunnel while the body was still coming (%d bytes sent): %v", sent.Load(), err)
	}
	if resp.StatusCode != http.StatusForbidden || sent.Load() >= slowBodyLen {
		t.Errorf("POST /refused/x in the tunnel with a slow body: %d after %d of %d body bytes, want 403 before the body is complete",
			resp.StatusCode, sent.Load(), slowBodyLen)
	}
	resp.Body.Close()
	noPanics(t, a, stderr)
}

// A flood of slow unauthenticated admin API connections does not take
// the descriptors agents need: with agentg's open files limited, an
// agent's request through the proxy still succeeds while the flood goes
// on.
func TestAdminFloodLeavesProxyServing(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "agentg-limited")
	script := fmt.Sprintf("#!/bin/sh\nulimit -n 160 || exit 1\nexec %s \"$@\"\n", agentgBin)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: bin, Dir: t.TempDir(), Policy: loopbackOpen,
		Args: []string{"--reload-interval", "0", "--shutdown-timeout", "2s", "--dns", "off"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	up := testenv.StartUpstream(testenv.UpstreamOptions{})
	defer up.Close()
	agent := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL()), DisableKeepAlives: true}}
	get := func(what string) {
		t.Helper()
		resp, err := agent.Get("http://" + up.HostPort("127.0.0.1") + "/" + what)
		if err != nil {
			t.Fatalf("an agent's request through the proxy %s: %v", what, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("an agent's request through the proxy %s: %d", what, resp.StatusCode)
		}
	}
	get("before the flood")

	// 300 connections, each a request without the token whose body
	// comes a byte at a time, each sending until agentg closes it.
	const flood = 300
	var wg sync.WaitGroup
	var open atomic.Int64
	stop := make(chan struct{})
	for range flood {
		c, err := net.DialTimeout("tcp", a.AdminAddr, 5*time.Second)
		if err != nil {
			break // the kernel's queue is full: the flood is as large as it gets
		}
		open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			io.WriteString(c, "POST /v1/policy/reload HTTP/1.1\r\nHost: agentg\r\nContent-Length: 100000\r\n\r\n")
			for {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}()
	}
	if open.Load() < flood/2 {
		t.Fatalf("only %d flood connections opened", open.Load())
	}
	for i := range 5 {
		get("during the flood " + itoa(i))
	}
	close(stop)
	wg.Wait()
	if s := a.Stderr(); strings.Contains(s, "too many open files") {
		t.Errorf("agentg ran out of descriptors:\n%s", s)
	}
}

// The body idle timeout bounds progress, not the whole body: an upload
// that keeps sending, slowly, for longer than the timeout is forwarded
// whole; one that stops sending is given up (answered, and its
// connection closed) while the client still owes most of it.
func TestBodyIdleTimeoutIsProgress(t *testing.T) {
	up := testenv.StartUpstream(testenv.UpstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, "got "+itoa(len(b)))
	})})
	defer up.Close()
	a, stderr := startRobustAgentg(t, exchangeEndPolicy, "--body-idle-timeout", "1s")
	target := up.HostPort("127.0.0.1")

	// 8 bytes, one every 400ms: 3.2s in all, never 1s without a byte.
	s := startSlowClient(t, a.Addr, "POST http://"+target+"/upload HTTP/1.1\r\nHost: "+target+"\r\nContent-Length: 8\r\n\r\n", 8, 400*time.Millisecond)
	resp, body := s.answer(t, 10*time.Second)
	if resp.StatusCode != 200 || body != "got 8" {
		t.Errorf("a slow upload that keeps sending: %d %q, want 200 \"got 8\"", resp.StatusCode, body)
	}

	// 2 bytes of 8, then nothing.
	c, err := net.Dial("tcp", a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST http://"+target+"/stalled HTTP/1.1\r\nHost: "+target+"\r\nContent-Length: 8\r\n\r\nxx")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("a stalled upload got no answer within 5s: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("a stalled upload: %d, want a refusal", resp.StatusCode)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the stalled upload's connection stays open: the rest of its body could be read as a request")
	}
	noPanics(t, a, stderr)
}
