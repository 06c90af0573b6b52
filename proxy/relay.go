package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// The byte relay of a tunnel once its gate has decided. It keeps the
// kernel's splice(2) path when both ends are TCP, and still notices a tunnel
// in which nothing has moved either way for the idle timeout: each copy runs
// in windows bounded by deadlines, and a window that moved no bytes asks
// whether the other direction did.

// activity is the last time either direction of a tunnel moved a byte.
type activity struct{ last atomic.Int64 }

func (a *activity) touch()                        { a.last.Store(time.Now().UnixNano()) }
func (a *activity) idle() time.Duration           { return time.Since(time.Unix(0, a.last.Load())) }
func newActivity() *activity                      { a := &activity{}; a.touch(); return a }
func isTimeout(err error) bool                    { return errors.Is(err, os.ErrDeadlineExceeded) }
func idleWindow(idle time.Duration) time.Duration { return max(idle/4, 10*time.Millisecond) }

var errIdle = errors.New("tunnel idle")

// What the relay relies on of the TCP connections raw finds: splice(2)
// through ReadFrom, and a half-close that lets the other direction finish.
var (
	_ io.ReaderFrom                   = (*net.TCPConn)(nil)
	_ interface{ CloseWrite() error } = (*net.TCPConn)(nil)
)

// pump copies src to dst until src ends (nil), either side fails, or the
// tunnel has been idle for idle (errIdle). counter receives the bytes.
func pump(dst, src net.Conn, counter *atomic.Int64, act *activity, idle time.Duration) error {
	win := idleWindow(idle)
	rd, rok := raw(src)
	wr, wok := raw(dst)
	var copyOnce func() (int64, error)
	if rok && wok {
		copyOnce = func() (int64, error) { return wr.ReadFrom(rd) } // splice
	} else {
		buf := make([]byte, 32<<10)
		copyOnce = func() (int64, error) {
			return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
		}
	}
	for {
		deadline := time.Now().Add(win)
		src.SetReadDeadline(deadline)
		dst.SetWriteDeadline(deadline.Add(idle))
		n, err := copyOnce()
		counter.Add(n)
		if n > 0 {
			act.touch()
		}
		switch {
		case err == nil:
			return nil
		case !isTimeout(err):
			return err
		case act.idle() >= idle:
			return errIdle
		}
	}
}

// relay runs both directions of a tunnel and returns when both are done.
// The upstream→client direction starts once downReady says the upstream's
// first bytes were relayed (nil) or failed. A direction that ends cleanly
// half-closes its destination; any other end closes both connections,
// which ends the other direction too.
func relay(client, up net.Conn, f *flow, act *activity, downReady <-chan error, idle time.Duration) error {
	errc := make(chan error, 2)
	run := func(dst, src net.Conn, counter *atomic.Int64, ready <-chan error) {
		err := <-ready
		if err == nil {
			err = pump(dst, src, counter, act, idle)
		}
		if err == nil {
			if tc, ok := raw(dst); ok && tc.CloseWrite() == nil {
				errc <- nil
				return
			}
		}
		client.Close()
		up.Close()
		errc <- err
	}
	now := make(chan error, 1)
	now <- nil
	go run(up, client, &f.up, now)
	go run(client, up, &f.down, downReady)
	err1, err2 := <-errc, <-errc
	client.Close()
	up.Close()
	if errors.Is(err1, errIdle) || errors.Is(err2, errIdle) {
		return errIdle
	}
	return nil
}
