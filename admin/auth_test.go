package admin

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestTokenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok, created, err := LoadOrCreateToken(dir)
	if err != nil || !created || len(tok) < 40 {
		t.Fatalf("first run: %q %v %v, want a new long token", tok, created, err)
	}
	st, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v %v, want 0600", st.Mode(), err)
	}
	again, created, err := LoadOrCreateToken(dir)
	if err != nil || created || again != tok {
		t.Fatalf("second run: %q %v %v, want the same token", again, created, err)
	}
	if got, err := ReadToken(dir); err != nil || got != tok {
		t.Fatalf("ReadToken: %q %v", got, err)
	}
	os.Chmod(filepath.Join(dir, TokenFile), 0o640)
	if _, _, err := LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable generated token: %v, want a refusal saying how to fix it", err)
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		mode       os.FileMode
		ok         bool
	}{
		{"good", "s3cret-token-of-enough-length\n", 0o600, true},
		{"group may read", "s3cret-token-of-enough-length", 0o640, true},
		{"others may read", "s3cret-token-of-enough-length", 0o604, false},
		{"short", "short\n", 0o600, false},
		{"empty", "", 0o600, false},
		{"space inside", "s3cret token of enough length", 0o600, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			os.WriteFile(p, []byte(tt.body), tt.mode)
			os.Chmod(p, tt.mode)
			tok, err := ReadTokenFile(p)
			if (err == nil) != tt.ok {
				t.Fatalf("ReadTokenFile: %q %v, want ok=%v", tok, err, tt.ok)
			}
			if tt.ok && tok != strings.TrimSpace(tt.body) {
				t.Fatalf("token %q", tok)
			}
		})
	}
}

// Two agentg starting on one data directory at once agree on one token:
// the file is created whole, so the one that loses the race never reads
// an empty or partial token. Rounds make the race likely to be met.
func TestTokenCreateRace(t *testing.T) {
	for round := range 100 {
		dir := filepath.Join(t.TempDir(), "data")
		const n = 4
		toks := make([]string, n)
		errs := make([]error, n)
		created := make([]bool, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				toks[i], created[i], errs[i] = LoadOrCreateToken(dir)
			}()
		}
		close(start)
		wg.Wait()
		made := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: caller %d: %v", round, i, errs[i])
			}
			if toks[i] != toks[0] {
				t.Fatalf("round %d: callers got different tokens %q and %q", round, toks[0], toks[i])
			}
			if created[i] {
				made++
			}
		}
		if made != 1 {
			t.Fatalf("round %d: %d callers say they created the token, want 1", round, made)
		}
	}
}
