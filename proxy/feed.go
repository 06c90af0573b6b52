package proxy

import (
	"io"
	"sync"
)

// feed hands the bytes a connection read to the Host tracker's parser.
// Unlike an io.Pipe, a write does not wait for the parser to take the
// bytes: it copies them and returns, so the connection's reader (net/http
// serving the client) never waits for a second goroutine on the way to
// its handler. The parser catches up on the other core; the handler waits
// for its note in hostTracker.take only if it has not. Up to feedMax bytes
// may wait; past that a write waits for the parser (a large body), so the
// memory a connection holds stays bounded.
type feed struct {
	mu      sync.Mutex
	buf     []byte // buf[off:] waits for the parser
	off     int
	err     error // the end of the stream, once the buffer is drained
	stopped bool  // the parser has gone: writes are dropped
	readers chan struct{}
	writers chan struct{}
}

// feedMax is the most a feed holds before a write waits: a few of the
// reads net/http makes (its buffer is 4 KiB), enough for any head.
const feedMax = 64 << 10

// feedKeep is the buffer a drained feed keeps for its next bytes; a larger
// one (a body went through) is let go, so an idle connection holds little.
const feedKeep = 8 << 10

func newFeed() *feed {
	return &feed{readers: make(chan struct{}, 1), writers: make(chan struct{}, 1)}
}

// signal wakes whoever waits on c, without blocking: c holds one token.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// write appends p for the parser. It waits only while the feed is full.
func (f *feed) write(p []byte) {
	f.mu.Lock()
	for len(f.buf)-f.off >= feedMax && !f.stopped && f.err == nil {
		f.mu.Unlock()
		<-f.writers
		f.mu.Lock()
	}
	if !f.stopped && f.err == nil {
		if f.off > 0 && len(f.buf)+len(p) > cap(f.buf) {
			// Move what waits to the front rather than grow.
			f.buf = f.buf[:copy(f.buf, f.buf[f.off:])]
			f.off = 0
		}
		f.buf = append(f.buf, p...)
	}
	f.mu.Unlock()
	signal(f.readers)
}

// close ends the stream with err once the parser has read what is there.
func (f *feed) close(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	signal(f.readers)
}

// Read is the parser's side: it waits for bytes or the end.
func (f *feed) Read(p []byte) (int, error) {
	f.mu.Lock()
	for f.off == len(f.buf) && f.err == nil {
		f.mu.Unlock()
		<-f.readers
		f.mu.Lock()
	}
	if f.off == len(f.buf) {
		err := f.err
		f.mu.Unlock()
		return 0, err
	}
	n := copy(p, f.buf[f.off:])
	f.off += n
	if f.off == len(f.buf) {
		f.buf, f.off = f.buf[:0], 0
		if cap(f.buf) > feedKeep {
			f.buf = nil
		}
	}
	f.mu.Unlock()
	signal(f.writers)
	return n, nil
}

// stop is the parser leaving: what was written and what will be is
// dropped, and a writer waiting for room is let go.
func (f *feed) stop() {
	f.mu.Lock()
	f.stopped, f.buf, f.off = true, nil, 0
	f.mu.Unlock()
	signal(f.writers)
}

var _ io.Reader = (*feed)(nil)
