package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The sink is where a Logger made by NewWithOptions writes: the log file
// (or stdout), with what a write error needs around it. A log that cannot
// be written (a full disk, a quota, an I/O error) must not be silent and
// must not corrupt the file; agentg's enforcement does not depend on it.
// The contract:
//   - Every decision is still made and enforced while the log cannot be
//     written: the lines that do not reach it are counted as lost (by
//     reason: no_space, quota, error; DroppedBySink, the metric
//     agentg_events_dropped_total), and the Logger reports the error
//     (SinkError: /readyz answers 503) until a write succeeds again.
//   - The first failure is said on stderr at once, and then at most once
//     per warnEvery while it lasts, with the count; the recovery too.
//   - No partial line is left: a short write to a regular file (the part
//     of a batch that fit) is cut back to its last whole line with
//     ftruncate, to the file's size less the bytes of the broken line.
//     That is exact because agentg appends (O_APPEND) and nothing else
//     writes to its log; a file not opened O_APPEND (stdout redirected by
//     a shell) is never cut. Where the file cannot be cut (a pipe, a failed
//     truncate) the next write begins with a newline, so the broken
//     line stands alone and the next event is whole.
//   - When writing works again, the first line written is an operational
//     message saying how many events and lines were lost, and since when;
//     while the log fails, a retry every retryEvery writes that line alone,
//     so recovery is seen (and /readyz turns ready) without new events.

// Reasons a line was lost, the metric's reason label.
const (
	ReasonNoSpace = "no_space"
	ReasonQuota   = "quota"
	ReasonError   = "error"
)

// sinkReasons are the reasons, in the order of sink.dropped.
var sinkReasons = [...]string{ReasonNoSpace, ReasonQuota, ReasonError}

func reasonOf(err error) int {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return 0
	case errors.Is(err, syscall.EDQUOT):
		return 1
	}
	return 2
}

const (
	warnEvery  = 10 * time.Second
	retryEvery = time.Second
)

type sink struct {
	name   string // "file", "stdout": the metric's sink label
	w      io.Writer
	f      *os.File  // w when it is a file opened O_APPEND, for the repair
	stderr io.Writer // nil: os.Stderr

	dropped [len(sinkReasons)]atomic.Uint64 // decision events lost, by reason
	failed  atomic.Pointer[error]           // the error while writes fail

	mu         sync.Mutex
	midLine    bool      // a broken line could not be cut: start the next write with "\n"
	since      time.Time // when writes began to fail
	lostEvents uint64    // since then, for the recovery line
	lostLines  uint64
	lastWarn   time.Time
	retrying   bool
	closed     bool
	stop       chan struct{}
}

func newSink(name string, w io.Writer, stderr io.Writer) *sink {
	s := &sink{name: name, w: w, stderr: stderr, stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok && appendOnly(f) {
		s.f = f
	}
	return s
}

// Write writes p, a whole number of lines. It never returns an error: a
// failure is handled here (counted, said, repaired), not by each caller.
func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeLocked(p)
	return len(p), nil
}

// writeLocked writes p after what recovery asks to come first; p may be
// nil (the retry). It reports whether the write succeeded.
func (s *sink) writeLocked(p []byte) bool {
	out := p
	var prefix int
	if s.midLine || s.failed.Load() != nil {
		var b bytes.Buffer
		if s.midLine {
			b.WriteByte('\n')
		}
		if s.failed.Load() != nil {
			s.lostLine(&b)
		}
		prefix = b.Len()
		b.Write(p)
		out = b.Bytes()
	}
	if len(out) == 0 {
		return true
	}
	n, err := s.w.Write(out)
	if err == nil && n < len(out) {
		err = io.ErrShortWrite
	}
	if err == nil {
		s.midLine = false
		if s.failed.Load() != nil {
			s.recovered()
		}
		return true
	}
	keep := s.repair(out, n)
	if keep >= prefix && prefix > 0 {
		// The lost line (and the newline before it) reached the file:
		// what is lost now is counted from here.
		s.lostEvents, s.lostLines = 0, 0
	}
	lost := out[max(keep, prefix):]
	events, lines := countLines(lost)
	s.dropped[reasonOf(err)].Add(events)
	s.lostEvents += events
	s.lostLines += lines
	s.fail(err)
	return false
}

// repair cuts a short write back to its last whole line and returns how
// many bytes of out are in the file after it.
func (s *sink) repair(out []byte, n int) int {
	if n <= 0 {
		return 0
	}
	keep := bytes.LastIndexByte(out[:n], '\n') + 1
	if keep == n {
		s.midLine = false
		return keep
	}
	if s.f != nil {
		if fi, err := s.f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() >= int64(n-keep) {
			if err := s.f.Truncate(fi.Size() - int64(n-keep)); err == nil {
				s.midLine = false
				return keep
			}
		}
	}
	s.midLine = true
	return keep
}

// countLines counts the decision events and all the lines in b.
func countLines(b []byte) (events, lines uint64) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		lines++
		if bytes.HasSuffix(line, []byte(`"message":"decision"}`)) {
			events++
		}
	}
	return events, lines
}

// lostLine is the operational line written first once writing works
// again.
func (s *sink) lostLine(b *bytes.Buffer) {
	var msg string
	if e := s.failed.Load(); e != nil {
		msg = (*e).Error()
	}
	line, _ := json.Marshal(struct {
		Level   string `json:"level"`
		Time    string `json:"time"`
		Events  uint64 `json:"lost_events"`
		Lines   uint64 `json:"lost_lines"`
		Since   string `json:"since"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}{"error", time.Now().UTC().Format(time.RFC3339Nano), s.lostEvents, s.lostLines,
		s.since.UTC().Format(time.RFC3339Nano), msg, "events lost: the event log could not be written"})
	b.Write(line)
	b.WriteByte('\n')
}

// fail records a failed write: the error for SinkError, the warning on
// stderr, the retry.
func (s *sink) fail(err error) {
	now := time.Now()
	first := s.failed.Load() == nil
	s.failed.Store(&err)
	if first {
		s.since = now
	}
	if first || now.Sub(s.lastWarn) >= warnEvery {
		s.lastWarn = now
		if first {
			s.warn("agentg: cannot write the event log (%s): %v: events are dropped and counted (agentg_events_dropped_total) until it can, /readyz answers 503; decisions are still enforced", s.name, err)
		} else {
			s.warn("agentg: the event log (%s) still cannot be written: %v: %d events dropped since %s", s.name, err, s.lostEvents, s.since.UTC().Format(time.RFC3339))
		}
	}
	if !s.retrying && !s.closed {
		s.retrying = true
		go s.retry()
	}
}

func (s *sink) recovered() {
	s.warn("agentg: the event log (%s) is written again; %d events were dropped since %s", s.name, s.lostEvents, s.since.UTC().Format(time.RFC3339))
	s.failed.Store(nil)
	s.lostEvents, s.lostLines = 0, 0
}

func (s *sink) warn(format string, args ...any) {
	w := s.stderr
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, format+"\n", args...)
}

// retry writes the lost line alone every retryEvery until a write
// succeeds, so recovery does not wait for the next event.
func (s *sink) retry() {
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		ok := s.failed.Load() == nil || s.writeLocked(nil)
		if ok {
			s.retrying = false
		}
		s.mu.Unlock()
		if ok {
			return
		}
	}
}

func (s *sink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
}

// err is the write error while the log cannot be written, else nil.
func (s *sink) err() error {
	if e := s.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// SinkDrops is how many decision events one sink lost for one reason.
type SinkDrops struct {
	Sink, Reason string
	Events       uint64
}

// DroppedBySink reports the decision events the Logger's sink could not
// write, by reason (every reason, zeros included); nil for a Logger made
// by New, which has no sink.
func (l *Logger) DroppedBySink() []SinkDrops {
	if l.sink == nil {
		return nil
	}
	out := make([]SinkDrops, len(sinkReasons))
	for i, r := range sinkReasons {
		out[i] = SinkDrops{Sink: l.sink.name, Reason: r, Events: l.sink.dropped[i].Load()}
	}
	return out
}

// SinkError is the error that keeps the log from being written, nil while
// it is written (and for a Logger made by New).
func (l *Logger) SinkError() error {
	if l.sink == nil {
		return nil
	}
	return l.sink.err()
}
