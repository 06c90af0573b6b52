package child

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLines(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     []string // "!" for ErrLineTooLong
	}{
		{"two", "a\nb\n", 10, []string{"a", "b"}},
		{"no final newline", "a\nb", 10, []string{"a", "b"}},
		{"empty lines kept", "a\n\nb\n", 10, []string{"a", "", "b"}},
		{"cr kept for the codec", "a\r\n", 10, []string{"a\r"}},
		{"exactly max", "abcd\n", 4, []string{"abcd"}},
		{"too long, skipped whole", "abcde\nok\n", 4, []string{"!", "ok"}},
		{"too long past the buffer", strings.Repeat("x", 200<<10) + "\nok\n", 100 << 10, []string{"!", "ok"}},
		{"long within max", strings.Repeat("y", 150<<10) + "\n", 200 << 10, []string{strings.Repeat("y", 150<<10)}},
		{"empty", "", 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []func(string) *strings.Reader{strings.NewReader} {
				var got []string
				err := Lines(iotest.OneByteReader(r(tt.in)), tt.max, func(l []byte, err error) {
					if errors.Is(err, ErrLineTooLong) {
						got = append(got, "!")
						return
					}
					got = append(got, string(l))
				})
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
					t.Fatalf("got %d lines %.80q, want %.80q", len(got), got, tt.want)
				}
			}
		})
	}
}

// FuzzLines: every line handed on is at most max bytes and has no
// newline, and the lines (with the skipped ones) are the input's.
func FuzzLines(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), 2)
	f.Add([]byte("\n\n\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max <= 0 || max > 1<<20 {
			return
		}
		var n int
		err := Lines(bytes.NewReader(in), max, func(l []byte, err error) {
			n++
			if err != nil {
				return
			}
			if len(l) > max || bytes.IndexByte(l, '\n') >= 0 {
				t.Fatalf("line %q (max %d)", l, max)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Count(in, []byte{'\n'})
		if len(in) > 0 && in[len(in)-1] != '\n' {
			want++
		}
		if n != want {
			t.Fatalf("%d lines from %q, want %d", n, in, want)
		}
	})
}
