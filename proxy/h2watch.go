package proxy

import (
	"io"
	"net"

	"golang.org/x/net/http2"
)

// resetWatch reports the HTTP/2 streams agentg's own server refuses: a
// request whose headers it cannot accept (a method or value with a line
// break, a bad pseudo-header) is reset with PROTOCOL_ERROR inside the
// frame reader, before any handler runs and without a CountError. Every
// frame on this connection's write side is written by that server (the
// upstream's answers reach it only as a handler's writes), so reading
// those frames back is exact, and a reset the server sends is its own
// decision.
type resetWatch struct {
	net.Conn
	pw *io.PipeWriter
}

func watchResets(c net.Conn, report func(kind string)) net.Conn {
	pr, pw := io.Pipe()
	go func() {
		defer pr.Close()
		fr := http2.NewFramer(nil, pr)
		fr.SetMaxReadFrameSize(1 << 24)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				if _, ok := err.(http2.StreamError); ok {
					continue
				}
				io.Copy(io.Discard, pr)
				return
			}
			switch f := f.(type) {
			case *http2.RSTStreamFrame:
				if f.ErrCode == http2.ErrCodeProtocol {
					report("stream reset: " + f.ErrCode.String())
				}
			case *http2.GoAwayFrame:
				if f.ErrCode != http2.ErrCodeNo {
					report("connection refused: GOAWAY " + f.ErrCode.String())
				}
			}
		}
	}()
	return &resetWatch{Conn: c, pw: pw}
}

func (w *resetWatch) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if n > 0 {
		w.pw.Write(p[:n])
	}
	return n, err
}

func (w *resetWatch) Close() error {
	w.pw.Close()
	return w.Conn.Close()
}
