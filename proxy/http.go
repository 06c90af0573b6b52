package proxy

import (
	"io"
	"net/http"

	"github.com/agentg/agentg/addr"
)

// authority is h as it belongs in a URL or Host header: the port is left
// out when it is the scheme's default.
func authority(h addr.Host, defPort uint16) string {
	if h.Port == defPort {
		return h.Hostname()
	}
	return h.String()
}

type countingBody struct {
	io.ReadCloser
	n     interface{ Add(int64) int64 }
	meter *byteMeter // nil: no bytes quota
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if b.meter != nil && n > 0 {
		if qerr := b.meter.charge(n); qerr != nil && err == nil {
			err = qerr
		}
	}
	return n, err
}

// countingRW is a response body that is also the upgraded connection of a
// WebSocket (101) response: the forwarder writes the client's frames into
// it.
type countingRW struct {
	countingBody
	w  io.Writer
	up interface{ Add(int64) int64 }
}

func (b *countingRW) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	b.up.Add(int64(n))
	if b.meter != nil && n > 0 {
		if qerr := b.meter.charge(n); qerr != nil && err == nil {
			err = qerr
		}
	}
	return n, err
}

var _ io.ReadWriteCloser = (*countingRW)(nil)

func countResponseBody(body io.ReadCloser, f *flow) io.ReadCloser {
	if body == nil || body == http.NoBody {
		return body
	}
	cb := countingBody{ReadCloser: body, n: &f.down, meter: f.meter}
	if w, ok := body.(io.Writer); ok {
		return &countingRW{countingBody: cb, w: w, up: &f.up}
	}
	return &cb
}
