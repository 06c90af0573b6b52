package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 21: a tunnel's event used to be written only when it
// closed, so a tunnel that moved data for seconds and then died with
// agentg (SIGKILL) left no line at all. Now a tunnel-open event is written
// as it is established; the tunnel's own event, when it closes, has the
// id the open event names as its parent.
func TestTunnelOpenEventSurvivesSIGKILL(t *testing.T) {
	// An opaque TCP upstream that echoes: the tunnel carries neither TLS
	// nor HTTP, so nothing inside it writes an event of its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: t.TempDir(), Policy: loopbackOpen,
		Args: []string{"--reload-interval", "0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)

	target := ln.Addr().String()
	c, err := net.DialTimeout("tcp", a.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %v %v", target, resp, err)
	}
	// The open event is on disk once the tunnel is established, before
	// any byte moved: positive evidence for the kill below.
	var open map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for open == nil {
		lines, _ := testenv.ReadLog(a.LogFile)
		for _, l := range lines {
			if l["kind"] == "tunnel-open" && l["host"] == "127.0.0.1" {
				open = l
			}
		}
		if open == nil {
			if time.Now().After(deadline) {
				lines, _ := testenv.ReadLog(a.LogFile)
				t.Fatalf("no tunnel-open event while the tunnel is open; log: %v", lines)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Data moves, both ways, for a while.
	for i := 0; i < 5; i++ {
		msg := "\x00ping " + itoa(i) + "\n"
		io.WriteString(c, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo %d through the tunnel: %q %v", i, got, err)
		}
	}

	a.Kill() // SIGKILL: no shutdown, no close event
	// The tunnel still works up to the kill; after it the client sees EOF.
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("the tunnel outlived agentg")
	}

	lines, err := testenv.ReadLog(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	var opens int
	for _, l := range lines {
		if l["kind"] == "tunnel-open" {
			opens++
			if l["decision"] != "allow" || l["rule"] != "loopback-open" || l["parent"] == "" || l["id"] == "" ||
				l["id"] == l["parent"] || l["port"] != float64(ln.Addr().(*net.TCPAddr).Port) || l["ip"] != "127.0.0.1" {
				t.Errorf("tunnel-open event does not name the tunnel: %v", l)
			}
		}
		if l["kind"] == "connect" {
			t.Errorf("a close event after SIGKILL? %v", l)
		}
	}
	if opens != 1 {
		t.Errorf("%d tunnel-open events, want 1", opens)
	}
}

// The close event is the tunnel's event of record: it has the id the open
// event names as its parent, and it alone is a decision (metrics count it,
// not the open event).
func TestTunnelOpenAndCloseEventsJoin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: loopbackOpen})
	target := ln.Addr().String()
	c, err := net.DialTimeout("tcp", a.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n\x00hello\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	if got, _ := br.ReadString('\n'); got != "\x00hello\n" {
		t.Fatalf("echo: %q", got)
	}
	c.Close()
	open := waitEventOf(t, a.Agentg, "opening the tunnel", func(m map[string]any) bool { return m["kind"] == "tunnel-open" })
	closed := waitEventOf(t, a.Agentg, "closing the tunnel", func(m map[string]any) bool { return m["kind"] == "connect" })
	if open["parent"] != closed["id"] || closed["opened"] != open["id"] || closed["bytes_up"] != float64(7) || closed["decision"] != "allow" {
		t.Errorf("open %v\nclose %v", open, closed)
	}
	// The metrics read events in order: once the close event is counted,
	// the open event before it has been seen.
	var body string
	waitFor(t, func() bool {
		_, body = adminGet(t, a.AdminAddr, "/metrics", "Bearer "+a.token)
		return strings.Contains(body, `agentg_decisions_total{decision="allow",kind="connect"`)
	}, "the tunnel counted in the metrics")
	if strings.Contains(body, `kind="tunnel-open"`) {
		t.Errorf("the open event is counted as a decision:\n%s", body)
	}
}

// An intercepted tunnel has its open event too: written once its first
// bytes were read as TLS, before the requests inside it (whose events
// name the same tunnel).
func TestTunnelOpenIntercepted(t *testing.T) {
	ie := newInterceptEnv(t, nil)
	c := ie.mitmClient(false)
	if resp, _ := get(t, c, "https://example.com:"+ie.up.port+"/in"); resp.StatusCode != 200 {
		t.Fatalf("intercepted GET: %d", resp.StatusCode)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	tunnel := ie.waitEvent(map[string]any{"kind": "connect", "tls": "intercepted"})
	open := ie.waitEvent(map[string]any{"kind": "tunnel-open", "tls": "intercepted"})
	req := ie.waitEvent(map[string]any{"kind": "http", "path": "/in"})
	if open.str("parent") != tunnel.str("id") || tunnel.str("opened") != open.str("id") || req.str("parent") != tunnel.str("id") {
		t.Errorf("open %v\nclose %v\nrequest %v", open, tunnel, req)
	}
	if open.str("host") != "example.com" || open.str("decision") != "allow" {
		t.Errorf("open event: %v", open)
	}
}
