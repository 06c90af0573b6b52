package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records each Write, so tests can tell batches apart.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) snapshot() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

func lineCount(s string) int { return strings.Count(s, "\n") }

func TestBufferedLogger(t *testing.T) {
	ev := func(i int) *Event {
		return &Event{Time: time.Unix(0, 0), Kind: "dns", Host: fmt.Sprintf("n%d.test", i), Decision: "allow"}
	}
	tests := []struct {
		name string
		opt  Options
		n    int
		// check runs after the n events are logged, before Close.
		check func(t *testing.T, w *countingWriter)
	}{
		{"unbuffered writes each event", Options{}, 10, func(t *testing.T, w *countingWriter) {
			if s, n := w.snapshot(); n != 10 || lineCount(s) != 10 {
				t.Errorf("%d writes, %d lines; want 10 and 10", n, lineCount(s))
			}
		}},
		{"buffered holds events until the interval", Options{FlushInterval: time.Hour}, 10, func(t *testing.T, w *countingWriter) {
			if _, n := w.snapshot(); n != 0 {
				t.Errorf("%d writes before any flush, want 0", n)
			}
		}},
		{"buffered flushes on the interval", Options{FlushInterval: 20 * time.Millisecond}, 10, func(t *testing.T, w *countingWriter) {
			deadline := time.Now().Add(5 * time.Second)
			for {
				s, n := w.snapshot()
				if lineCount(s) == 10 {
					if n > 2 {
						t.Errorf("%d writes for 10 events: not batched", n)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 5s, %d of 10 lines written", lineCount(s))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}},
		{"buffered flushes when full", Options{FlushInterval: time.Hour, BufferSize: 1024}, 100, func(t *testing.T, w *countingWriter) {
			s, n := w.snapshot()
			if n == 0 || lineCount(s) == 0 || lineCount(s) == 100 {
				t.Errorf("%d writes, %d lines: a full buffer should have been written, not all of it", n, lineCount(s))
			}
			if !strings.HasSuffix(s, "\n") {
				t.Errorf("a batch ends inside a line: %q", s[max(0, len(s)-40):])
			}
		}},
		{"an event larger than the buffer is written whole", Options{FlushInterval: time.Hour, BufferSize: 16}, 3, func(t *testing.T, w *countingWriter) {
			if s, _ := w.snapshot(); lineCount(s) != 3 {
				t.Errorf("%d lines, want 3", lineCount(s))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &countingWriter{}
			l := NewWithOptions(w, tt.opt)
			for i := range tt.n {
				l.Log(ev(i))
			}
			tt.check(t, w)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l.Log(ev(tt.n)) // after Close: written at once
			s, _ := w.snapshot()
			lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
			if len(lines) != tt.n+1 {
				t.Fatalf("%d lines after Close and one more event, want %d", len(lines), tt.n+1)
			}
			for i, line := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("line %d is not JSON: %v: %q", i, err, line)
				}
				if want := fmt.Sprintf("n%d.test", i); m["host"] != want {
					t.Fatalf("line %d is %v, want %s: lost or reordered", i, m["host"], want)
				}
			}
		})
	}
}

// An operational message takes the buffered events with it, in order:
// whoever waits for it (the serving line) sees everything before it.
func TestBufferedOpsFlush(t *testing.T) {
	w := &countingWriter{}
	l := NewWithOptions(w, Options{FlushInterval: time.Hour})
	defer l.Close()
	l.Log(&Event{Kind: "dns", Host: "first.test"})
	l.Zerolog().Info().Msg("ops")
	s, _ := w.snapshot()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "first.test") || !strings.Contains(lines[1], `"message":"ops"`) {
		t.Fatalf("want the event then the message, got %q", s)
	}
}

// Concurrent events through the buffer stay whole lines (run with -race).
func TestBufferedConcurrent(t *testing.T) {
	w := &countingWriter{}
	l := NewWithOptions(w, Options{FlushInterval: time.Millisecond, BufferSize: 512})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				l.Log(&Event{Kind: "dns", Host: fmt.Sprintf("g%d-%d.test", g, i), Reason: strings.Repeat("x", i)})
			}
		})
	}
	wg.Wait()
	l.Close()
	s, _ := w.snapshot()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("torn line: %v: %q", err, line)
		}
	}
}
