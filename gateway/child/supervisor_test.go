package child

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func engine(t *testing.T, servers string) *rules.Engine {
	t.Helper()
	e, err := rules.Parse("policy.yaml", []byte("mcp:\n  servers:\n"+servers))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The supervisor follows the policy: a changed command restarts the
// child, a removed server is stopped; a child relays lines both ways.
func TestSupervisorFollowsPolicy(t *testing.T) {
	var log syncBuf
	s, err := NewSupervisor(SupervisorConfig{Log: audit.New(&log), Proxy: "127.0.0.1:1", Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.Start(engine(t, "    - name: a\n      command: [cat]\n"))
	c, ok := s.Child("a")
	if !ok {
		t.Fatal("no child a")
	}
	p1, err := c.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Send([]byte(`{"jsonrpc":"2.0","method":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if l := <-p1.Recv(); string(l.Msg) != `{"jsonrpc":"2.0","method":"x"}` || l.Err != nil {
		t.Fatalf("cat echoed %q %v", l.Msg, l.Err)
	}
	// The same entry again: the same process.
	s.Start(engine(t, "    - name: a\n      command: [cat]\n"))
	if c2, _ := s.Child("a"); c2 != c {
		t.Fatal("an unchanged entry was restarted")
	}
	// A changed command: a new process once the old one exited.
	s.Start(engine(t, "    - name: a\n      command: [cat, -u]\n"))
	<-p1.Done()
	c2, _ := s.Child("a")
	p2, err := c2.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p2.PID == p1.PID {
		t.Fatal("no new process for a changed command")
	}
	if st := s.Statuses(); len(st) != 1 || !st[0].Running || st[0].PID != p2.PID || st[0].Server != "a" {
		t.Fatalf("statuses: %+v", st)
	}
	// Removed: stopped.
	s.Start(engine(t, "    - name: b\n      command: [cat]\n"))
	<-p2.Done()
	if _, ok := s.Child("a"); ok {
		t.Fatal("a removed server still has a child")
	}
	if n := strings.Count(log.String(), `"action":"server-start"`); n < 2 {
		t.Fatalf("%d start events:\n%s", n, log.String())
	}
	// A program that does not exist: an event, and retries.
	s.Start(engine(t, "    - name: c\n      command: [/nonexistent/prog]\n"))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), `could not start`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(log.String(), `"server":"c"`) || !strings.Contains(log.String(), "could not start") {
		t.Fatalf("no event for a program that cannot start:\n%s", log.String())
	}
}
