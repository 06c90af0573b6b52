package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// net/http deletes the Host header of an absolute-form request before a
// handler sees it (RFC 9112 §3.2.2 lets a proxy ignore it). agentg refuses
// such a request instead when the header names another destination, since
// an upstream that routes on Host would serve a site the policy never
// checked. To see the header the client really sent, each connection's
// bytes are also fed, as net/http reads them, to a second parser that is
// net/http's own (http.ReadRequest): it frames requests exactly as the
// server does, so the two cannot fall out of step, and it notes the Host of
// each head in order. The handler takes the note for its request.
//
// The same parser is how agentg sees the requests net/http refuses on its
// own (malformed heads, two Host headers, oversized heads): it refuses the
// same bytes for the same reasons, and the event is agentg's own decision,
// never something read back out of what was written to the client.

// note is what the tracker saw of one request head.
type note struct {
	host    string // the Host header as sent
	hasHost bool
	bad     string // the tracker refused this head; the reason
}

// maxPendingNotes bounds the notes a connection may hold: net/http serves
// one request at a time and reads ahead at most its buffer, so more
// pending heads than this means the client is pipelining abusively.
const maxPendingNotes = 64

// hostTracker wraps a client connection of the explicit listener (and the
// plaintext of a tunnel served as HTTP/1).
type hostTracker struct {
	net.Conn
	onBad     func(status int, reason string) // agentg refuses a head net/http will refuse too
	keepNotes bool                            // a handler takes a note per request (the explicit listener)

	notes chan note // closed when the parser stops

	mu   sync.Mutex
	lost bool // notes overflowed or the parser failed: trust nothing more
	done bool // CONNECT or Upgrade: the stream is no longer HTTP/1
	pw   *io.PipeWriter
}

func newHostTracker(c net.Conn, maxHeader int, onBad func(int, string), keepNotes bool) *hostTracker {
	pr, pw := io.Pipe()
	t := &hostTracker{Conn: c, onBad: onBad, keepNotes: keepNotes, pw: pw}
	if keepNotes {
		t.notes = make(chan note, maxPendingNotes)
	}
	go t.parse(pr, maxHeader)
	return t
}

func (t *hostTracker) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 && t.tracking() {
		// The parser consumes everything it is given (bodies are
		// discarded), so this returns as soon as it has read the bytes;
		// once the parser has stopped the write fails and is ignored.
		t.pw.Write(p[:n])
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// A deadline is net/http ending its background read, not the
		// end of the stream.
		t.pw.CloseWithError(err)
	}
	return n, err
}

func (t *hostTracker) Close() error {
	t.pw.CloseWithError(net.ErrClosed)
	return t.Conn.Close()
}

func (t *hostTracker) tracking() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.done && !t.lost
}

// take returns the note for the request a handler is serving now. The
// parser was handed every byte of that head before net/http could parse
// it, so the note is there or about to be. ok is false when the tracker
// lost count; the caller refuses the request and closes the connection.
func (t *hostTracker) take() (note, bool) {
	var n note
	var ok bool
	select {
	case n, ok = <-t.notes:
	default:
		timer := time.NewTimer(noteWait)
		select {
		case n, ok = <-t.notes:
		case <-timer.C:
		}
		timer.Stop()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !ok || t.lost {
		t.lost = true
		return note{}, false
	}
	return n, true
}

// noteWait bounds how long a handler waits for the parser, which has the
// bytes already: only a parser that is wedged takes this long.
const noteWait = 5 * time.Second

// raw returns the connection beneath, for the kernel's splice path once
// the stream has left HTTP/1 (a tunnel).
func (t *hostTracker) raw() net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return t.Conn
	}
	return t
}

func (t *hostTracker) push(n note) {
	if !t.keepNotes {
		return
	}
	select {
	case t.notes <- n:
	default:
		t.mu.Lock()
		t.lost = true
		t.mu.Unlock()
	}
}

func (t *hostTracker) stop(lost bool) {
	t.mu.Lock()
	t.done = t.done || !lost
	t.lost = t.lost || lost
	t.mu.Unlock()
}

// parse is the second parser. It reads what the connection read, one
// request at a time, with net/http's limit on the head (MaxHeaderBytes
// plus the buffer net/http allows on top of it).
func (t *hostTracker) parse(pr *io.PipeReader, maxHeader int) {
	defer pr.Close()
	if t.notes != nil {
		defer close(t.notes)
	}
	hr := &headReader{r: pr, remain: -1}
	br := bufio.NewReaderSize(hr, 4096)
	lastPOST := false
	for {
		hr.start(br, int64(maxHeader)+4096)
		peek, err := br.Peek(1)
		if err != nil {
			return // the connection ended between requests
		}
		if lastPOST {
			// net/http forgives the CRLF old clients send after a body.
			peek, _ = br.Peek(min(4, br.Buffered()))
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			br.Discard(n)
			hr.capture.Next(n)
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			status := http.StatusBadRequest
			if hr.over {
				status = http.StatusRequestHeaderFieldsTooLarge
			}
			t.refused(status, err.Error())
			return
		}
		head := hr.capture.Bytes()[:hr.capture.Len()-br.Buffered()]
		n := t.noteOf(req, head)
		hr.stop()
		leaves := req.Method == http.MethodConnect || req.Header.Get("Upgrade") != ""
		if leaves && n.bad == "" {
			// Before the note: the handler that takes it may hand the
			// connection to a relay, which then finds it raw.
			t.stop(false)
		}
		t.push(n)
		if n.bad != "" {
			t.refused(http.StatusBadRequest, n.bad)
			return
		}
		lastPOST = req.Method == http.MethodPost
		if leaves {
			io.Copy(io.Discard, br)
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			// A body net/http cannot frame either (bad chunking).
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
				t.refused(http.StatusBadRequest, err.Error())
			}
			return
		}
	}
}

// noteOf reads the Host header out of the exact head bytes, with the
// textproto parser net/http itself uses, and applies the checks net/http's
// server makes after parsing (so that agentg refuses what it refuses).
func (t *hostTracker) noteOf(req *http.Request, raw []byte) note {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	tp.ReadLine()
	mh, _ := tp.ReadMIMEHeader()
	hosts := mh["Host"]
	n := note{hasHost: len(hosts) > 0}
	switch {
	case len(hosts) > 1:
		n.bad = "too many Host headers"
	case len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		n.bad = "malformed Host header"
	case req.ProtoAtLeast(1, 1) && len(hosts) == 0 && req.Method != http.MethodConnect:
		n.bad = "missing required Host header"
	case len(hosts) == 1:
		n.host = hosts[0]
	}
	for k, vv := range mh {
		if n.bad != "" {
			break
		}
		if !httpguts.ValidHeaderFieldName(k) {
			n.bad = "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				n.bad = "invalid header value"
			}
		}
	}
	return n
}

func (t *hostTracker) refused(status int, reason string) {
	t.stop(true)
	if t.onBad != nil {
		t.onBad(status, strings.TrimSpace(reason))
	}
}

// headReader gives the tracker's parser net/http's read limit on a head
// and the exact bytes of that head: it captures what is read from the
// connection from the start of a head (after the bytes the buffer already
// held) until the head is parsed, and nothing of bodies.
type headReader struct {
	r       io.Reader
	remain  int64 // negative: no limit (a body)
	over    bool
	capture bytes.Buffer
	on      bool
}

func (h *headReader) start(br *bufio.Reader, limit int64) {
	h.capture.Reset()
	held, _ := br.Peek(br.Buffered())
	h.capture.Write(held)
	h.on, h.remain, h.over = true, limit, false
}

func (h *headReader) stop() { h.on, h.remain = false, -1 }

func (h *headReader) Read(p []byte) (int, error) {
	if h.remain == 0 {
		h.over = true
		return 0, errHeadTooLarge
	}
	if h.remain > 0 && int64(len(p)) > h.remain {
		p = p[:h.remain]
	}
	n, err := h.r.Read(p)
	if h.remain > 0 {
		h.remain -= int64(n)
	}
	if h.on {
		h.capture.Write(p[:n])
	}
	return n, err
}

var errHeadTooLarge = errors.New("request head too large")

// trackerOf returns the tracker of the connection r arrived on.
func trackerOf(r *http.Request) *hostTracker {
	t, _ := r.Context().Value(connKey{}).(*hostTracker)
	return t
}

var _ net.Conn = (*hostTracker)(nil)

type connKey struct{}
