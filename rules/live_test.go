package rules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLiveReload(t *testing.T) {
	p := writePolicy(t, "default: allow\nhosts:\n  - deny: a.test\n", nil)
	e, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLive(p, e)
	if l.Engine() != e {
		t.Fatal("Engine() is not the initial engine")
	}
	// A broken edit keeps the engine in force and names file:line.
	if err := os.WriteFile(p, []byte("default: allow\nhosts:\n  - deny: \"a.*.test\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = l.Reload()
	if err == nil || !strings.Contains(err.Error(), "policy.yaml:3") {
		t.Fatalf("Reload err = %v", err)
	}
	if l.Engine() != e || l.Engine().Host("", host(t, "a.test", 443)).Outcome() != "deny" {
		t.Fatal("broken reload replaced the engine")
	}
	if err := os.WriteFile(p, []byte("default: allow\nhosts:\n  - deny: b.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if l.Engine().Host("", host(t, "a.test", 443)).Outcome() != "allow" || l.Engine().Host("", host(t, "b.test", 443)).Outcome() != "deny" {
		t.Fatal("reload did not take effect")
	}
}

func TestLiveWatch(t *testing.T) {
	p := writePolicy(t, "default: allow\nlists:\n  - path: l.txt\n    format: plain\n", map[string]string{"l.txt": "a.test\n"})
	e, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLive(p, e)
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan error, 10)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.Watch(ctx, 10*time.Millisecond, func(err error) { results <- err })
	}()
	defer func() { cancel(); wg.Wait() }()

	// Concurrent readers while reloading: the race detector watches this.
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		h := host(t, "a.test", 443)
		for {
			select {
			case <-stop:
				return
			default:
				_ = l.Engine().Host("", h)
			}
		}
	}()
	defer func() { close(stop); rwg.Wait() }()

	touch := func(name, body string) {
		t.Helper()
		f := filepath.Join(filepath.Dir(p), name)
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// Coarse file systems keep the mtime within one tick: move it on.
		future := time.Now().Add(time.Duration(len(body)) * time.Second)
		if err := os.Chtimes(f, future, future); err != nil {
			t.Fatal(err)
		}
	}
	wait := func() error {
		t.Helper()
		select {
		case err := <-results:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("watcher did not reload")
		}
		return nil
	}

	touch("l.txt", "b.test\n")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if l.Engine().Host("", host(t, "b.test", 443)).Outcome() != "deny" || l.Engine().Host("", host(t, "a.test", 443)).Outcome() != "allow" {
		t.Fatal("list change not picked up")
	}
	touch("policy.yaml", "default: allow\nbogus: 1\n")
	if err := wait(); err == nil || !strings.Contains(err.Error(), "policy.yaml:2") {
		t.Fatalf("broken policy: err = %v", err)
	}
	if l.Engine().Host("", host(t, "b.test", 443)).Outcome() != "deny" {
		t.Fatal("broken policy replaced the engine")
	}
	select {
	case err := <-results:
		t.Fatalf("broken policy reported twice: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	touch("policy.yaml", "default: deny\n")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if l.Engine().Host("", host(t, "c.test", 443)).Outcome() != "deny" {
		t.Fatal("fixed policy not picked up")
	}
}

func TestLiveOnReloadSeesNewEngine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte("default: allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLive(path, e)
	var got []*Engine
	l.OnReload(func(e *Engine) { got = append(got, e) })
	os.WriteFile(path, []byte("default: deny\n"), 0o644)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("default: [\n"), 0o644)
	if err := l.Reload(); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	if len(got) != 1 || got[0] != l.Engine() || got[0] == e {
		t.Fatalf("subscribers saw %d engines, want exactly the one reloaded", len(got))
	}
}

// A policy caught half written (os.WriteFile truncates first) is not
// loaded: the watcher waits until the files look the same twice.
func TestLivePollWaitsForTheWriteToSettle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte("default: allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLive(path, e)
	step := func(body string, at time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Now().Add(time.Hour)
	step("", base) // truncated, not yet written
	pending, tried, err := l.poll(nil)
	if tried {
		t.Fatalf("loaded a file caught mid-write: %v", err)
	}
	step("default: deny\n", base.Add(time.Second))
	if pending, tried, err = l.poll(pending); tried {
		t.Fatalf("loaded a change seen once: %v", err)
	}
	if _, tried, err = l.poll(pending); !tried || err != nil {
		t.Fatalf("settled change: tried=%v err=%v", tried, err)
	}
	if l.Engine() == e || l.Engine().Host("", host(t, "a.test", 443)).Outcome() != "deny" {
		t.Fatal("settled policy not in force")
	}
}
