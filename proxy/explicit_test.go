package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
)

// syncBuffer collects the event log written from the proxy's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) events(t *testing.T) []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// The explicit door end to end over real sockets: a CONNECT whose first
// tunnel bytes came in the same write reaches the upstream with them
// (goproxy's hijack would drop them; keepBuffered is the workaround), a
// refused CONNECT gets the pipeline's refusal through goproxy, and an
// origin-form request the non-proxy answer; each with its one event.
func TestExplicitDoor(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	got := make(chan string, 1)
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		io.ReadFull(c, b)
		got <- string(b)
		c.Write([]byte("WORLD"))
	}()
	log := &syncBuffer{}
	srv, err := New(Config{Policy: fixedPolicy{mustParse(t, "default: deny\nips:\n  - allow: 127.0.0.0/8\n    ports: ["+portOf(up.Addr())+"]\n")},
		Log: audit.New(log), FirstBytesTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	// Allowed, with the tunnel's first bytes in the CONNECT's write.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: "+up.Addr().String()+"\r\n\r\n\x00HELO")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	select {
	case s := <-got:
		if s != "\x00HELO" { // neither TLS nor HTTP/1: relayed opaque
			t.Fatalf("the upstream got %q, want the bytes sent with the CONNECT", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the bytes sent with the CONNECT never reached the upstream")
	}
	answer := make([]byte, 5)
	if _, err := io.ReadFull(br, answer); err != nil || string(answer) != "WORLD" {
		t.Fatalf("the client got %q, %v", answer, err)
	}
	c.Close()

	refused := []struct {
		name, req string
		status    int
		rule      string
	}{
		{"address not opened on that port", "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n", http.StatusForbidden, "builtin:non-public"},
		{"no port", "CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", http.StatusBadRequest, ""},
		{"origin-form", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest, ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tt.req)
			method := strings.Fields(tt.req)[0]
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.HasPrefix(string(body), "agentg") {
				t.Fatalf("%d %q, want %d from agentg", resp.StatusCode, body, tt.status)
			}
			if tt.rule != "" && !strings.HasPrefix(resp.Header.Get("X-Agentg-Rule"), tt.rule) {
				t.Errorf("X-Agentg-Rule %q, want %s", resp.Header.Get("X-Agentg-Rule"), tt.rule)
			}
		})
	}
	srv.Shutdown(context.Background())
	// One event per connection (and the tunnel's open event); the
	// tunnel's own is written when it ends, in whatever order.
	// The tunnel's is written as its handler returns, which Shutdown
	// does not wait for (the connection was hijacked): wait for it.
	want := []string{"connect:allow:200", "connect:deny:400", "connect:deny:403", "http:deny:400", "tunnel-open:allow:0"}
	evs := log.events(t)
	for deadline := time.Now().Add(5 * time.Second); len(evs) < len(want) && time.Now().Before(deadline); evs = log.events(t) {
		time.Sleep(10 * time.Millisecond)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind+":"+e.Decision+":"+itoa(e.Status))
	}
	slices.Sort(kinds)
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", kinds, want)
	}
}

func portOf(a net.Addr) string { return itoa(a.(*net.TCPAddr).Port) }

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
