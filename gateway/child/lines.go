package child

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrLineTooLong is the error of a line longer than the limit: it is
// discarded up to its newline, never handed on in part.
var ErrLineTooLong = errors.New("a line longer than mcp.max_message")

// Lines reads newline-delimited messages from r and calls fn with each
// line (without its newline; the slice is only valid during the call), or
// with a nil line and ErrLineTooLong for a line longer than max, which is
// skipped whole. It returns at EOF (nil) or a read error. A last line
// without a newline is a line.
func Lines(r io.Reader, max int, fn func(line []byte, err error)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	over := false
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			if !over {
				buf = append(buf, frag...)
				if len(buf) > max {
					over, buf = true, buf[:0]
				}
			}
			continue
		case err != nil && err != io.EOF:
			return fmt.Errorf("read: %w", err)
		}
		if !over {
			buf = append(buf, frag...)
			if n := len(buf); n > 0 && buf[n-1] == '\n' {
				buf = buf[:n-1]
			}
			if len(buf) > max {
				over = true
			}
		}
		switch {
		case over:
			fn(nil, ErrLineTooLong)
		case len(buf) > 0 || err == nil:
			fn(buf, nil)
		}
		buf, over = buf[:0], false
		if err == io.EOF {
			return nil
		}
	}
}

// lineWriter writes one message per line to w, whole: writes from
// several goroutines never interleave.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (lw *lineWriter) write(msg []byte) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	b := make([]byte, 0, len(msg)+1)
	b = append(append(b, msg...), '\n')
	if _, err := lw.w.Write(b); err != nil {
		lw.err = fmt.Errorf("write: %w", err)
	}
	return lw.err
}
