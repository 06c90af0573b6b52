package audit

import (
	"io"
	"sync"
	"time"
)

// Buffered logging: a Logger made with Options.FlushInterval > 0 gathers
// event lines in a buffer and writes them in one Write every interval,
// whenever the next line would not fit, and on Flush and Close. It turns
// one write(2) per event into one per batch, which is what lets a busy
// DNS filter log every query. The contract: lines are written whole and
// in the order they were logged; operational messages (Zerolog) flush
// the buffer with them, so that startup, reload and error lines, and the
// events before them, are on disk when they are logged; nothing is lost
// on Close. What a crash (SIGKILL, power) loses is at most one interval.

// Options tune a Logger.
type Options struct {
	// FlushInterval is the longest an event waits in the buffer; 0
	// writes each event at once.
	FlushInterval time.Duration
	// BufferSize is the buffer's size in bytes; default 64 KiB. An event
	// line larger than the buffer is written on its own.
	BufferSize int
	// Sink names the writer in the metric of lost events and in the
	// warnings (sink.go): "file", "stdout"; default "file".
	Sink string
	// Stderr is where a failing log is reported; nil: os.Stderr.
	Stderr io.Writer
}

// DefaultBufferSize is the buffer of a buffered Logger.
const DefaultBufferSize = 64 << 10

// NewWithOptions returns a Logger writing to w as o says. Close it to
// flush and stop its flusher.
//
// Its writes go through a sink (sink.go): a write error is counted,
// reported and repaired there, never left as a partial line.
func NewWithOptions(w io.Writer, o Options) *Logger {
	if o.Sink == "" {
		o.Sink = "file"
	}
	sk := newSink(o.Sink, w, o.Stderr)
	if o.FlushInterval <= 0 {
		l := New(sk)
		l.sink = sk
		return l
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	b := &bufWriter{w: sk, buf: make([]byte, 0, o.BufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(o.FlushInterval)
	l := newLogger(b, flushingWriter{b})
	l.buf, l.sink = b, sk
	return l
}

// Flush writes what the buffer holds (a Logger without one has nothing
// to flush) and returns the sink's error while the log cannot be written.
func (l *Logger) Flush() error {
	var err error
	if l.buf != nil {
		err = l.buf.flush()
	}
	if err == nil {
		err = l.SinkError()
	}
	return err
}

// Close flushes the buffer and stops the flusher. Events logged after
// Close are written at once, unbuffered, so a late one is not lost. It
// does not close the underlying writer.
func (l *Logger) Close() error {
	var err error
	if l.buf != nil {
		err = l.buf.close()
	}
	if l.sink != nil {
		l.sink.close() // its retry stops; later writes are still tried
	}
	return err
}

// bufWriter is the buffer. Its mutex also keeps lines whole, as
// zerolog.SyncWriter does for an unbuffered Logger.
type bufWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	closed bool
	err    error // the last write error, reported by Flush and Close

	stop, done chan struct{}
	once       sync.Once
}

func (b *bufWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		b.flushLocked()
		if len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *bufWriter) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil {
		b.err = err // the lines are dropped, as an unbuffered Write that failed drops its line
	}
	b.buf = b.buf[:0]
}

func (b *bufWriter) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	err := b.err
	b.err = nil
	return err
}

func (b *bufWriter) flushEvery(d time.Duration) {
	defer close(b.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.flush()
		}
	}
}

func (b *bufWriter) close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.closed = true
	err := b.err
	b.err = nil
	return err
}

// flushingWriter writes through the buffer and flushes it: operational
// messages are rare and someone may be waiting for them.
type flushingWriter struct{ b *bufWriter }

func (f flushingWriter) Write(p []byte) (int, error) {
	f.b.mu.Lock()
	defer f.b.mu.Unlock()
	if !f.b.closed {
		f.b.flushLocked()
	}
	return f.b.w.Write(p)
}
