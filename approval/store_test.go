package approval

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestApprovalsDecideOnce(t *testing.T) {
	m, err := NewMemoryStore(StoreOptions{MaxPending: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, id := range []string{"a", "b"} {
		if err := m.PutApproval(Approval{ID: id, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.PutApproval(Approval{ID: "c"}); !errors.Is(err, ErrFull) {
		t.Fatalf("past MaxPending: %v, want ErrFull", err)
	}
	done := m.Decided("a")
	// Racing deciders: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan string, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := StateApproved
			if i%2 == 1 {
				st = StateDenied
			}
			if _, err := m.DecideApproval("a", Decision{State: st, By: "t"}); err == nil {
				wins <- st
			} else if !errors.Is(err, ErrDecided) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Fatalf("%d decisions won, want 1", n)
	}
	select {
	case <-done:
	default:
		t.Fatal("Decided not closed")
	}
	if got := m.PendingCount(); got != 1 {
		t.Fatalf("pending %d, want 1", got)
	}
	if err := m.PutApproval(Approval{ID: "c"}); err != nil {
		t.Fatalf("after a decision there is room: %v", err)
	}
	if _, err := m.DecideApproval("zz", Decision{State: StateDenied}); !errors.Is(err, ErrNoApproval) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestApprovalsPersistPending(t *testing.T) {
	dir := t.TempDir()
	m, err := NewMemoryStore(StoreOptions{DataDir: dir, WriteDelay: time.Millisecond, OnError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	m.PutApproval(Approval{ID: "ap-1", Tool: "echo", Args: `{"secret":1}`})
	m.PutApproval(Approval{ID: "ap-2"})
	m.DecideApproval("ap-2", Decision{State: StateApproved})
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, PendingFile))
		if strings.Contains(string(b), "ap-1") && !strings.Contains(string(b), "ap-2") {
			if strings.Contains(string(b), "secret") {
				t.Fatalf("the pending file carries arguments: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending file: %s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The file named ap-1 before any Close (above), as a crash would leave
	// it. m stops now all the same: left running, its writer could write
	// the file again after n's last write below (it did, on a busy
	// machine). Its final write names ap-1 too: it is still pending.
	m.Close()
	n, err := NewMemoryStore(StoreOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	o := n.Orphans()
	if len(o) != 1 || o[0].ID != "ap-1" || o[0].Tool != "echo" {
		t.Fatalf("orphans %+v", o)
	}
	if len(n.Orphans()) != 0 {
		t.Fatal("orphans handed out twice")
	}
	n.Close()
	b, _ := os.ReadFile(filepath.Join(dir, PendingFile))
	if strings.Contains(string(b), "ap-1") {
		t.Fatalf("the file still names the orphan after it was reported: %s", b)
	}
}

// grantFor holds and approves a new approval, remembering it under key.
func grantFor(m *MemoryStore, id, key string, expires time.Time) error {
	if err := m.PutApproval(Approval{ID: id, Created: time.Now()}); err != nil {
		return err
	}
	_, err := m.DecideApproval(id, Decision{State: StateApproved, By: "console", Scope: "agent-tool",
		Grant: &Grant{Key: key, Expires: expires}})
	return err
}

func TestApprovalsGrants(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	m, _ := NewMemoryStore(StoreOptions{MaxGrants: 1, Now: clock})
	defer m.Close()
	if err := grantFor(m, "ap-1", "k", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if g, ok := m.Grant("k"); !ok || g.Approval != "ap-1" {
		t.Fatalf("grant %+v %v", g, ok)
	}
	// Past MaxGrants the decision fails whole: not approved, nothing
	// remembered, still pending.
	if err := grantFor(m, "ap-2", "k2", now.Add(time.Minute)); !errors.Is(err, ErrFull) {
		t.Fatalf("past MaxGrants: %v", err)
	}
	if a, _ := m.Approval("ap-2"); a.State != StatePending {
		t.Fatalf("a decision whose grant failed: %+v", a)
	}
	now = now.Add(2 * time.Minute)
	if _, ok := m.Grant("k"); ok {
		t.Fatal("expired grant found")
	}
	if _, err := m.DecideApproval("ap-2", Decision{State: StateApproved, By: "console",
		Grant: &Grant{Key: "k2", Expires: now.Add(time.Minute)}}); err != nil {
		t.Fatalf("expired grants make room: %v", err)
	}
	// A decision that fails (decided already) stores no grant; nor does
	// a grant with a deny.
	if _, err := m.DecideApproval("ap-2", Decision{State: StateApproved, By: "console",
		Grant: &Grant{Key: "k3", Expires: now.Add(time.Minute)}}); !errors.Is(err, ErrDecided) {
		t.Fatalf("second decision: %v", err)
	}
	if _, ok := m.Grant("k3"); ok {
		t.Fatal("a failed decision stored its grant")
	}
	m.PutApproval(Approval{ID: "ap-3"})
	if _, err := m.DecideApproval("ap-3", Decision{State: StateDenied, By: "console",
		Grant: &Grant{Key: "k4", Expires: now.Add(time.Minute)}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a deny with a grant: %v", err)
	}
}

// An approved approval passes its call once; a pending, denied or unknown
// one passes none.
func TestApprovalsUseOnce(t *testing.T) {
	m, err := NewMemoryStore(StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, id := range []string{"ok", "no"} {
		if err := m.PutApproval(Approval{ID: id, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.UseApproval("ok"); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("pending: %v, want ErrNotApproved", err)
	}
	m.DecideApproval("ok", Decision{State: StateApproved, By: "console"})
	m.DecideApproval("no", Decision{State: StateDenied, By: "console"})
	if a, err := m.UseApproval("ok"); err != nil || a.By != "console" {
		t.Fatalf("approved: %+v %v", a, err)
	}
	// Racing users: none wins again.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := m.UseApproval("ok"); !errors.Is(err, ErrUsed) {
				t.Errorf("second use: %v, want ErrUsed", err)
			}
		})
	}
	wg.Wait()
	if a, err := m.UseApproval("no"); !errors.Is(err, ErrNotApproved) || a.State != StateDenied {
		t.Fatalf("denied: %+v %v", a, err)
	}
	if _, err := m.UseApproval("zz"); !errors.Is(err, ErrNoApproval) {
		t.Fatalf("unknown: %v", err)
	}
}
