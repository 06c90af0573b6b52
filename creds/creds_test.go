package creds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const value = "s3cr3t-VALUE-9f8e"

// noValue fails when s carries the value.
func noValue(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, value) {
		t.Errorf("%s shows the value: %s", what, s)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret{name: "github", value: value}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		got := fmt.Sprintf(f, s)
		noValue(t, f, got)
	}
	if got := fmt.Sprint(s); got != "secret(github)" {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintf("%v", struct{ S Secret }{s}); !strings.Contains(got, "secret(github)") {
		t.Errorf("nested = %q", got)
	}
	noValue(t, "nested %+v", fmt.Sprintf("%+v %#v", struct{ S Secret }{s}, []Secret{s}))
	j, _ := json.Marshal(map[string]any{"s": s, "p": &s})
	noValue(t, "json", string(j))
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "s", s)
	noValue(t, "slog", b.String())
	src := Inline(value)
	noValue(t, "source", fmt.Sprintf("%v %+v %#v %s", src, src, src, src))
	if s.Reveal() != value || s.Name() != "github" {
		t.Error("Reveal or Name wrong")
	}
}

func TestSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	if err := os.WriteFile(file, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	crlf := filepath.Join(dir, "crlf")
	os.WriteFile(crlf, []byte(value+"\r\n"), 0o600)
	two := filepath.Join(dir, "two")
	os.WriteFile(two, []byte(value+"\n\n"), 0o600)
	t.Setenv("CREDS_TEST_TOKEN", value)
	t.Setenv("CREDS_TEST_EMPTY", "")
	tests := []struct {
		name string
		src  Source
		want string // "" : an error
		err  string
	}{
		{"env", Source{Kind: KindEnv, Env: "CREDS_TEST_TOKEN"}, value, ""},
		{"env unset", Source{Kind: KindEnv, Env: "CREDS_TEST_NOPE"}, "", "env CREDS_TEST_NOPE): the environment variable is not set"},
		{"env empty", Source{Kind: KindEnv, Env: "CREDS_TEST_EMPTY"}, "", "the value is empty"},
		{"file", Source{Kind: KindFile, Path: file}, value, ""},
		{"file crlf", Source{Kind: KindFile, Path: crlf}, value, ""},
		{"file two newlines", Source{Kind: KindFile, Path: two}, "", "line break"},
		{"file missing", Source{Kind: KindFile, Path: filepath.Join(dir, "nope")}, "", "cannot open the file"},
		{"command", Source{Kind: KindCommand, Argv: []string{"printf", "%s\\n", value}}, value, ""},
		{"command no shell", Source{Kind: KindCommand, Argv: []string{"echo", "$HOME"}}, "$HOME", ""},
		{"command fails", Source{Kind: KindCommand, Argv: []string{"sh", "-c", "echo " + value + "; echo " + value + " >&2; exit 3"}}, "", "the command failed: exit status 3"},
		{"command missing", Source{Kind: KindCommand, Argv: []string{"/nonexistent/agentg-cmd"}}, "", "cannot run the command"},
		{"command timeout", Source{Kind: KindCommand, Argv: []string{"sleep", "10"}, Timeout: 100 * time.Millisecond}, "", "did not finish within 100ms"},
		{"inline", Inline(value), value, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			st := NewStore(map[string]Source{"tok": tt.src})
			s, err := st.Get(context.Background(), "tok")
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if tt.want == "" {
				if err == nil {
					t.Fatalf("no error, got %v", s)
				}
				var ce *Error
				if !errors.As(err, &ce) || ce.Secret != "tok" || !strings.Contains(err.Error(), "secret tok") {
					t.Errorf("error does not name the secret: %v", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error = %q, want %q in it", err, tt.err)
				}
				noValue(t, "error", err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Reveal() != tt.want {
				t.Errorf("value = %q, want %q", s.Reveal(), tt.want)
			}
		})
	}
}

func TestStoreCachesPerLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(file, []byte("one\n"), 0o600)
	src := map[string]Source{"f": {Kind: KindFile, Path: file}}
	st := NewStore(src)
	get := func(st *Store) string {
		s, err := st.Get(context.Background(), "f")
		if err != nil {
			t.Fatal(err)
		}
		return s.Reveal()
	}
	if got := get(st); got != "one" {
		t.Fatalf("got %q", got)
	}
	os.WriteFile(file, []byte("two\n"), 0o600)
	if got := get(st); got != "one" {
		t.Errorf("a store re-read its file: %q", got)
	}
	if got := get(NewStore(src)); got != "two" {
		t.Errorf("a new store (a reload) kept the old value: %q", got)
	}
	if _, err := st.Get(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "secret nope") {
		t.Errorf("unknown secret: %v", err)
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		in, want, err string
		names         []string
	}{
		{"Bearer {{secret}}", "Bearer V(own)", "", []string{"own"}},
		{"{{ secret }}", "V(own)", "", []string{"own"}},
		{"token {{secret gh}}:{{secret}}", "token V(gh):V(own)", "", []string{"gh", "own"}},
		{"plain", "plain", "", nil},
		{"a {b} c", "a {b} c", "", nil},
		{"{{secrets}}", "", "is not a placeholder", nil},
		{"{{ env HOME }}", "", "is not a placeholder", nil},
		{"{{secret a b}}", "", "is not a placeholder", nil},
		{"{{secret a/b}}", "", "bad secret name", nil},
		{"Bearer {{secret", "", "unclosed {{", nil},
		{"x }} y", "", "unmatched }}", nil},
		{"{{}}", "", "is not a placeholder", nil},
		{"{{secret}}\r\nX: y", "", "line break", nil},
	}
	for _, tt := range tests {
		tp, err := ParseTemplate(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		got, err := tp.Expand(func(n string) (Secret, error) {
			if n == "" {
				n = "own"
			}
			return Secret{name: n, value: "V(" + n + ")"}, nil
		})
		if err != nil || got != tt.want {
			t.Errorf("%q expands to %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if fmt.Sprint(tp.Secrets("own")) != fmt.Sprint(tt.names) {
			t.Errorf("%q names %v, want %v", tt.in, tp.Secrets("own"), tt.names)
		}
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"Bearer {{secret}}", "{{secret a}}{{secret}}", "{{", "}}", "{{{secret}}}", "{{secret a b}}", "x{{ secret\t}}y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTemplate(s)
		if err != nil {
			return
		}
		// What parses prints back to something that parses the same.
		again, err := ParseTemplate(tp.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, tp.String(), err)
		}
		if again.String() != tp.String() {
			t.Fatalf("%q: %q then %q", s, tp.String(), again.String())
		}
		out, err := tp.Expand(func(n string) (Secret, error) { return Secret{name: n, value: "V"}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(out, "\r\n\x00") {
			t.Fatalf("%q expands to a value with a line break", s)
		}
		if !tp.HasPlaceholder() && out != s {
			t.Fatalf("%q without placeholders expands to %q", s, out)
		}
	})
}

// A failed read is answered from memory for FailBackoff: a failing (or
// hung) command runs once, not once per request queued behind it; after
// the backoff it runs again. A read cut short by its caller's context is
// not kept.
func TestStoreFailureBackoff(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	src := map[string]Source{"c": {Kind: KindCommand, Argv: []string{"/bin/sh", "-c", "echo x >> " + runs + "; exit 3"}}}
	st := NewStore(src)
	now := time.Unix(1000, 0)
	st.now = func() time.Time { return now }
	count := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "x")
	}
	for range 3 {
		if _, err := st.Get(context.Background(), "c"); err == nil {
			t.Fatal("a failing command gave a secret")
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("the failing command ran %d times within the backoff, want 1", n)
	}
	now = now.Add(FailBackoff)
	if _, err := st.Get(context.Background(), "c"); err == nil {
		t.Fatal("a failing command gave a secret")
	}
	if n := count(); n != 2 {
		t.Fatalf("the command ran %d times after the backoff, want 2", n)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	st2 := NewStore(src)
	st2.Get(cancelled, "c")
	st2.Get(context.Background(), "c")
	if n := count(); n != 3 {
		t.Errorf("a read its caller cancelled was kept: the command ran %d times in all, want 3", n)
	}
}
