package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exists bool
		perm   fs.FileMode
	}{
		{"new file", false, 0o600},
		{"replaces", true, 0o600},
		{"public mode", false, 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.json")
			if tc.exists {
				if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(p, []byte("new"), tc.perm); err != nil {
				t.Fatal(err)
			}
			checkFile(t, p, "new", tc.perm)
			checkNoTemp(t, dir)
		})
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := Create(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Create(p, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist", err)
	}
	checkFile(t, p, "first", 0o600)
	checkNoTemp(t, dir)
}

// TestCreateRace: of many creators of one file, exactly one wins and the
// file holds its data whole.
func TestCreateRace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := string(rune('a'+i)) + "-data"
			switch err := Create(p, []byte(data), 0o600); {
			case err == nil:
				wins.Add(1)
				winner.Store(data)
			case !errors.Is(err, fs.ErrExist):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d creators won, want 1", wins.Load())
	}
	checkFile(t, p, winner.Load().(string), 0o600)
	checkNoTemp(t, dir)
}

func TestWriteMissingDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "such", "f")
	if err := Write(p, []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write in a missing directory: %v, want fs.ErrNotExist", err)
	}
}

func checkFile(t *testing.T, p, want string, perm fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s holds %q, want %q", p, b, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), perm)
	}
}

func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if filepath.Ext(e.Name()) != "" && e.Name()[0] == '.' {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
