package bench

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"
)

// Events counts what a proxy logged: agentg's decision events by kind
// (and those of each kind that were intercepted), Squid's access log lines
// (and those that were CONNECTs). A run that went through a proxy shows up
// here; one that was intercepted shows up as such.
type Events struct {
	HTTP    int64 `json:"http"`    // agentg kind http: plain HTTP requests and requests inside intercepted tunnels; Squid: every line that is not a CONNECT
	Connect int64 `json:"connect"` // agentg kind connect, Squid CONNECT lines: tunnels, logged when they close
	// Of the above, agentg's events carrying "tls":"intercepted"; for
	// Squid, the requests it read inside bumped tunnels (https:// URLs).
	InterceptedHTTP    int64 `json:"intercepted_http"`
	InterceptedConnect int64 `json:"intercepted_connect"`
}

// Sub is e minus b, field by field.
func (e Events) Sub(b Events) Events {
	return Events{HTTP: e.HTTP - b.HTTP, Connect: e.Connect - b.Connect,
		InterceptedHTTP: e.InterceptedHTTP - b.InterceptedHTTP, InterceptedConnect: e.InterceptedConnect - b.InterceptedConnect}
}

// Marks in agentg's JSON lines: decision events carry a kind, operational
// messages do not; events of intercepted tunnels and of the requests in
// them carry the tls mark. In Squid's native access log the method is a
// field of its own and a bumped request's URL is absolute https.
var (
	agentgHTTP        = []byte(`"kind":"http"`)
	agentgConnect     = []byte(`"kind":"connect"`)
	agentgIntercepted = []byte(`"tls":"intercepted"`)
	squidConnect      = []byte(" CONNECT ")
	squidHTTPS        = []byte(" https://")
)

// logCounter counts the complete lines appended to a log since it last
// looked, without decoding them (a run logs hundreds of thousands).
type logCounter struct {
	path   string
	squid  bool
	mu     sync.Mutex
	offset int64
	total  Events
}

// Count reads what was appended and returns the counts so far.
func (c *logCounter) Count() Events {
	if c == nil {
		return Events{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.Open(c.path)
	if err != nil {
		return c.total
	}
	defer f.Close()
	if _, err := f.Seek(c.offset, io.SeekStart); err != nil {
		return c.total
	}
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: count by its start, skip the rest.
			c.count(line)
			for err == bufio.ErrBufferFull {
				c.offset += int64(len(line))
				line, err = br.ReadSlice('\n')
			}
			c.offset += int64(len(line))
			continue
		}
		if err != nil {
			return c.total // the rest is not a whole line yet
		}
		c.offset += int64(len(line))
		c.count(line)
	}
}

func (c *logCounter) count(line []byte) {
	t := &c.total
	if c.squid {
		if bytes.Contains(line, squidConnect) {
			t.Connect++
			return
		}
		t.HTTP++
		if bytes.Contains(line, squidHTTPS) {
			t.InterceptedHTTP++
		}
		return
	}
	switch {
	case bytes.Contains(line, agentgHTTP):
		t.HTTP++
		if bytes.Contains(line, agentgIntercepted) {
			t.InterceptedHTTP++
		}
	case bytes.Contains(line, agentgConnect):
		t.Connect++
		if bytes.Contains(line, agentgIntercepted) {
			t.InterceptedConnect++
		}
	}
}

// Events returns what mode m's proxy has logged so far (zero for Direct).
// Squid writes its log through a buffer: its counts are complete only
// after Shutdown.
func (e *Env) Events(m Mode) Events {
	switch m {
	case Agentg:
		return e.agentgLog.Count()
	case Squid:
		return e.squidLog.Count()
	}
	return Events{}
}
