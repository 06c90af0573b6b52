package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckPinTransitions(t *testing.T) {
	a, b, c := hashOf("A"), hashOf("B"), hashOf("C")
	type step struct {
		hash   Hash
		accept bool // AcceptPin instead of CheckPin
		want   PinResult
		err    error // of AcceptPin
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first sight, then the same", []step{{hash: a, want: PinNew}, {hash: a, want: PinSame}, {hash: a, want: PinSame}}},
		{"a change stays changed until accepted", []step{
			{hash: a, want: PinNew}, {hash: b, want: PinChanged}, {hash: b, want: PinChanged},
			{accept: true}, {hash: b, want: PinChangedAccepted}, {hash: b, want: PinChangedAccepted},
		}},
		{"nothing to accept", []step{{hash: a, want: PinNew}, {accept: true, err: ErrNothingToAccept}}},
		{"no pin to accept", []step{{accept: true, err: ErrNoPin}}},
		{"going back to the accepted definition needs no acceptance", []step{
			{hash: a, want: PinNew}, {hash: b, want: PinChanged}, {hash: a, want: PinChangedAccepted},
		}},
		{"a second change while pending is still pending; back to the accepted is fine", []step{
			{hash: a, want: PinNew}, {hash: b, want: PinChanged}, {hash: c, want: PinChanged}, {hash: a, want: PinChangedAccepted},
		}},
		{"an accepted change, then the old definition again, is a change", []step{
			{hash: a, want: PinNew}, {hash: b, want: PinChanged}, {accept: true},
			{hash: a, want: PinChanged}, {accept: true}, {hash: a, want: PinChangedAccepted},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newStore(t, nil, Options{})
			for i, s := range tt.steps {
				if s.accept {
					_, err := m.AcceptPin("jira", "create_issue")
					if s.err == nil && err != nil || s.err != nil && !errors.Is(err, s.err) {
						t.Fatalf("step %d: AcceptPin: %v, want %v", i, err, s.err)
					}
					continue
				}
				if got := m.CheckPin("jira", "create_issue", s.hash); got != s.want {
					t.Fatalf("step %d: CheckPin: %v, want %v", i, got, s.want)
				}
				if p, _ := m.Pin("jira", "create_issue"); p.Result() != s.want && s.want != PinNew {
					t.Fatalf("step %d: Pin().Result() %v, want %v", i, p.Result(), s.want)
				}
			}
		})
	}
}

func TestPinRecords(t *testing.T) {
	clk := newClock()
	var full atomic.Int64
	m := newStore(t, clk, Options{MaxToolsPerServer: 2, OnError: func(err error) {
		if !errors.Is(err, ErrFull) {
			t.Error(err)
		}
		full.Add(1)
	}})
	first := clk.Now()
	m.CheckPin("gomcp", "a.b", hashOf("1"))
	clk.Advance(time.Minute)
	m.CheckPin("gomcp", "a.b", hashOf("2"))
	p, ok := m.Pin("gomcp", "a.b")
	if !ok || p.Hash != hashOf("2") || p.Previous != hashOf("1") || p.Accepted || !p.FirstSeen.Equal(first) || !p.LastSeen.Equal(first.Add(time.Minute)) {
		t.Fatalf("pin %+v", p)
	}
	if _, ok := m.Pin("gomcp.a", "b"); ok {
		t.Fatal("server gomcp.a tool b found for server gomcp tool a.b")
	}
	m.CheckPin("gomcp", "", hashOf("empty name"))
	if got := m.CheckPin("gomcp", "third", hashOf("3")); got != PinUnchecked {
		t.Fatalf("past MaxToolsPerServer: %v, want PinUnchecked", got)
	}
	if full.Load() != 1 {
		t.Fatalf("ErrFull reported %d times, want 1", full.Load())
	}
	if got := m.CheckPin("other", "third", hashOf("3")); got != PinNew {
		t.Fatalf("another server is not bounded by this one: %v", got)
	}
	if got := m.CheckPin("", "t", hashOf("x")); got != PinUnchecked {
		t.Fatalf("empty server: %v", got)
	}
	pins := m.Pins()
	var names []string
	for _, p := range pins {
		names = append(names, p.Server+"/"+p.Tool)
	}
	if fmt.Sprint(names) != "[gomcp/ gomcp/a.b other/third]" {
		t.Fatalf("Pins() %v", names)
	}
}

func TestPinsPersist(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	m := newStore(t, clk, Options{DataDir: dir})
	m.CheckPin("jira", "create_issue", hashOf("v1"))
	m.CheckPin("jira", "delete_project", hashOf("v1"))
	m.CheckPin("jira", "delete_project", hashOf("v2 with a hidden instruction"))
	fi, err := os.Stat(filepath.Join(dir, PinsFile))
	if err != nil {
		t.Fatalf("pins not written when CheckPin returned: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("pins file mode %04o, want 0600", fi.Mode().Perm())
	}
	clk.Advance(time.Hour)
	m.CheckPin("jira", "create_issue", hashOf("v1")) // a last-seen time only
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart remembers: the same definition is Same, the changed one is
	// still waiting for acceptance.
	m2 := newStore(t, clk, Options{DataDir: dir})
	if got := m2.CheckPin("jira", "create_issue", hashOf("v1")); got != PinSame {
		t.Errorf("after restart: %v, want same", got)
	}
	if got := m2.CheckPin("jira", "delete_project", hashOf("v2 with a hidden instruction")); got != PinChanged {
		t.Errorf("after restart, the changed tool: %v, want changed", got)
	}
	if p, _ := m2.Pin("jira", "create_issue"); !p.LastSeen.Equal(clk.Now()) {
		t.Errorf("last seen %v, want %v (written on Close)", p.LastSeen, clk.Now())
	}
	if got := m2.CheckPin("jira", "create_issue", hashOf("v9")); got != PinChanged {
		t.Errorf("a change after restart: %v", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// `agentg mcp pins accept` (AcceptPinFile) on the file, then Reload.
func TestAcceptPinFileAndReload(t *testing.T) {
	dir := t.TempDir()
	m := newStore(t, nil, Options{DataDir: dir})
	m.CheckPin("jira", "t", hashOf("v1"))
	m.CheckPin("jira", "t", hashOf("v2"))

	if _, err := AcceptPinFile(dir, "jira", "nope"); !errors.Is(err, ErrNoPin) {
		t.Fatalf("accept of a missing pin: %v", err)
	}
	p, err := AcceptPinFile(dir, "jira", "t")
	if err != nil || !p.Accepted || p.Hash != hashOf("v2") {
		t.Fatalf("AcceptPinFile: %+v %v", p, err)
	}
	if _, err := AcceptPinFile(dir, "jira", "t"); !errors.Is(err, ErrNothingToAccept) {
		t.Fatalf("accepting twice: %v", err)
	}
	if got := m.CheckPin("jira", "t", hashOf("v2")); got != PinChanged {
		t.Fatalf("before Reload: %v, want changed (the server has not looked)", got)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := m.CheckPin("jira", "t", hashOf("v2")); got != PinChangedAccepted {
		t.Fatalf("after Reload: %v, want changed-accepted", got)
	}
	if _, err := AcceptPinFile(t.TempDir(), "jira", "t"); !errors.Is(err, ErrNoPin) {
		t.Fatalf("accept with no pins file: %v", err)
	}
}

// The server writing the file (a new pin) before it reloads does not undo
// an acceptance made on the file meanwhile; and a change the server makes
// is not undone by a reload of an older file.
func TestPinFileMerge(t *testing.T) {
	dir := t.TempDir()
	m := newStore(t, nil, Options{DataDir: dir})
	m.CheckPin("s", "changed", hashOf("v1"))
	m.CheckPin("s", "changed", hashOf("v2"))
	if _, err := AcceptPinFile(dir, "s", "changed"); err != nil {
		t.Fatal(err)
	}
	m.CheckPin("s", "new", hashOf("n1")) // writes the file: merges first
	pins, err := ReadPins(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 2 || pins[0].Tool != "changed" || !pins[0].Accepted || pins[1].Tool != "new" {
		t.Fatalf("file after the server's write: %+v", pins)
	}
	if got := m.CheckPin("s", "changed", hashOf("v2")); got != PinChangedAccepted {
		t.Fatalf("in memory: %v", got)
	}

	// A pin removed from the file is forgotten: the tool is pinned afresh.
	os.WriteFile(filepath.Join(dir, PinsFile), []byte(`{"version":1,"pins":[]}`), 0o600)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := m.CheckPin("s", "changed", hashOf("v3")); got != PinNew {
		t.Fatalf("after removal from the file: %v, want new", got)
	}
	// The whole file removed: likewise.
	os.Remove(filepath.Join(dir, PinsFile))
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(m.Pins()) != 0 {
		t.Fatalf("pins after the file was removed: %+v", m.Pins())
	}
}

func TestPinFileDamaged(t *testing.T) {
	for name, content := range map[string]string{
		"not json":       `{"version":1,"pins":[`,
		"other version":  `{"version":2,"pins":[]}`,
		"unknown member": `{"version":1,"pins":[],"extra":true}`,
		"duplicate key":  `{"version":1,"version":1,"pins":[]}`,
		"short hash":     `{"version":1,"pins":[{"server":"s","tool":"t","sha256":"abcd","accepted":true,"first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z"}]}`,
		"no server":      `{"version":1,"pins":[{"server":"","tool":"t","sha256":"` + hashOf("x").String() + `","accepted":true,"first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z"}]}`,
		"pinned twice": `{"version":1,"pins":[` +
			`{"server":"s","tool":"t","sha256":"` + hashOf("x").String() + `","accepted":true,"first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z"},` +
			`{"server":"s","tool":"t","sha256":"` + hashOf("y").String() + `","accepted":true,"first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, PinsFile)
			os.WriteFile(path, []byte(content), 0o600)
			if _, err := NewMemory(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), PinsFile) {
				t.Fatalf("NewMemory over a damaged pins file: %v, want an error naming it", err)
			}

			// A running store keeps its pins and does not overwrite the file.
			dir2 := t.TempDir()
			var errs []error
			var mu sync.Mutex
			m := newStore(t, nil, Options{DataDir: dir2, OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
			m.CheckPin("s", "t", hashOf("v1"))
			os.WriteFile(filepath.Join(dir2, PinsFile), []byte(content), 0o600)
			if err := m.Reload(); err == nil {
				t.Fatal("Reload of a damaged file succeeded")
			}
			if got := m.CheckPin("s", "t", hashOf("v1")); got != PinSame {
				t.Fatalf("after a failed reload: %v, want same", got)
			}
			m.CheckPin("s", "u", hashOf("v1")) // wants to write
			if b, _ := os.ReadFile(filepath.Join(dir2, PinsFile)); string(b) != content {
				t.Fatal("the damaged file was overwritten")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(errs) == 0 {
				t.Fatal("the failed write was not reported")
			}
		})
	}
}

// Writes are atomic: a reader never sees a partial file, whatever the
// writers do at the same time (the store, and accepts on the file).
func TestPinFileAtomic(t *testing.T) {
	dir := t.TempDir()
	m := newStore(t, nil, Options{DataDir: dir})
	m.CheckPin("s", "seed", hashOf("0"))
	stop := make(chan struct{})
	var reads atomic.Int64
	var wg, readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			if _, err := ReadPins(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("read during writes: %v", err)
				return
			}
			reads.Add(1)
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				tool := fmt.Sprintf("w%d-%d", w, i%5)
				m.CheckPin("s", tool, hashOf(fmt.Sprint(i)))
				AcceptPinFile(dir, "s", tool) // may find nothing to accept
			}
		}()
	}
	for range 40 {
		m.Reload()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	t.Logf("%d reads during the writes", reads.Load())
	// The file and memory agree at the end once the store reloads.
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	file, err := ReadPins(dir)
	if err != nil {
		t.Fatal(err)
	}
	mem := m.Pins()
	if len(file) != len(mem) {
		t.Fatalf("file has %d pins, memory %d", len(file), len(mem))
	}
	for i := range file {
		if file[i].Server != mem[i].Server || file[i].Tool != mem[i].Tool || file[i].Hash != mem[i].Hash || file[i].Accepted != mem[i].Accepted {
			t.Errorf("pin %d: file %+v, memory %+v", i, file[i], mem[i])
		}
	}
}

// Many goroutines seeing one new tool: exactly one is told it is new.
func TestCheckPinConcurrent(t *testing.T) {
	m := newStore(t, nil, Options{DataDir: t.TempDir()})
	var news, sames atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				switch m.CheckPin("s", fmt.Sprint("tool", i), hashOf("same")) {
				case PinNew:
					news.Add(1)
				case PinSame:
					sames.Add(1)
				default:
					t.Error("unexpected result")
				}
				m.CountCall("s", fmt.Sprint("tool", i))
			}
		}()
	}
	wg.Wait()
	if news.Load() != 50 || sames.Load() != 15*50 {
		t.Fatalf("new %d same %d, want 50 and 750", news.Load(), sames.Load())
	}
}

func BenchmarkCheckPinSameParallel(b *testing.B) {
	m := newStore(b, nil, Options{})
	h := hashOf("def")
	m.CheckPin("jira", "create_issue", h)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m.CheckPin("jira", "create_issue", h) != PinSame {
				b.Fatal("not same")
			}
		}
	})
}

// A pin written under an older hash version is re-hashed in place: an
// accepted one stays accepted, a pending change stays pending, and the
// new hash is persisted. A pin whose hash is not from is left alone.
func TestMigratePin(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	m := newStore(t, clk, Options{DataDir: dir})
	m.CheckPin("jira", "ok", hashOf("v1 of ok"))
	m.CheckPin("jira", "pending", hashOf("v1 of pending"))
	m.CheckPin("jira", "pending", hashOf("v1 of pending, changed"))
	for _, tc := range []struct {
		tool     string
		from, to Hash
		did      bool
		accepted bool
	}{
		{"ok", hashOf("v1 of ok"), hashOf("v2 of ok"), true, true},
		{"pending", hashOf("v1 of pending, changed"), hashOf("v2 of pending, changed"), true, false},
		{"ok", hashOf("v1 of ok"), hashOf("v2 again"), false, true}, // already migrated
		{"absent", hashOf("x"), hashOf("y"), false, false},
	} {
		if got := m.MigratePin("jira", tc.tool, tc.from, tc.to); got != tc.did {
			t.Errorf("MigratePin(%s) = %v, want %v", tc.tool, got, tc.did)
		}
		if p, ok := m.Pin("jira", tc.tool); tc.did && (!ok || p.Hash != tc.to || p.Accepted != tc.accepted) {
			t.Errorf("%s after migration: %+v", tc.tool, p)
		}
	}
	if got := m.CheckPin("jira", "ok", hashOf("v2 of ok")); got != PinSame {
		t.Errorf("the migrated definition checks as %v, want same", got)
	}
	again := newStore(t, clk, Options{DataDir: dir})
	if p, ok := again.Pin("jira", "ok"); !ok || p.Hash != hashOf("v2 of ok") {
		t.Errorf("migration not persisted: %+v", p)
	}
}
