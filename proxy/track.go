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

	notes chan note   // closed when the parser stops
	wait  *time.Timer // take's, made on its first wait

	mu   sync.Mutex
	lost bool // notes overflowed or the parser failed: trust nothing more
	done bool // CONNECT or Upgrade: the stream is no longer HTTP/1
	in   *feed
}

func newHostTracker(c net.Conn, maxHeader int, onBad func(int, string), keepNotes bool) *hostTracker {
	t := &hostTracker{Conn: c, onBad: onBad, keepNotes: keepNotes, in: newFeed()}
	if keepNotes {
		t.notes = make(chan note, maxPendingNotes)
	}
	go t.parse(maxHeader)
	return t
}

func (t *hostTracker) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 && t.tracking() {
		// The feed copies the bytes and returns; the parser reads them
		// on its own goroutine. Once it has stopped they are dropped.
		t.in.write(p[:n])
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// A deadline is net/http ending its background read, not the
		// end of the stream.
		t.in.close(err)
	}
	return n, err
}

func (t *hostTracker) Close() error {
	t.in.close(net.ErrClosed)
	return t.Conn.Close()
}

func (t *hostTracker) tracking() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.done && !t.lost
}

// take returns the note for the request a handler is serving now. The
// parser was handed every byte of that head before net/http could parse
// it, so the note is there or about to be: the parser may still be at it
// on the other core. ok is false when the tracker
// lost count; the caller refuses the request and closes the connection.
func (t *hostTracker) take() (note, bool) {
	var n note
	var ok bool
	select {
	case n, ok = <-t.notes:
	default:
		// The parser is still at it on the other core. One timer per
		// connection: its handlers take notes one at a time.
		if t.wait == nil {
			t.wait = time.NewTimer(noteWait)
		} else {
			t.wait.Reset(noteWait)
		}
		select {
		case n, ok = <-t.notes:
		case <-t.wait.C:
		}
		t.wait.Stop()
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
func (t *hostTracker) parse(maxHeader int) {
	defer t.in.stop()
	if t.notes != nil {
		defer close(t.notes)
	}
	hr := &headReader{r: t.in, remain: -1}
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

// noteOf reads the Host header out of the exact head bytes and applies the
// checks net/http's server makes after parsing, so that agentg refuses
// what it refuses. req is http.ReadRequest's parse of the same head, which
// has every other field (it drops Host, as the server does).
func (t *hostTracker) noteOf(req *http.Request, raw []byte) note {
	host, count, folded := hostField(raw)
	if folded {
		// A field folded over lines (obs-fold): let textproto, the
		// reader net/http uses, unfold it.
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
		tp.ReadLine()
		mh, _ := tp.ReadMIMEHeader()
		hosts := mh["Host"]
		host, count = "", len(hosts)
		if count > 0 {
			host = hosts[0]
		}
	}
	n := note{hasHost: count > 0}
	switch {
	case count > 1:
		n.bad = "too many Host headers"
	case count == 1 && (!httpguts.ValidHostHeader(host) || !httpguts.ValidHeaderFieldValue(host)):
		n.bad = "malformed Host header"
	case req.ProtoAtLeast(1, 1) && count == 0 && req.Method != http.MethodConnect:
		n.bad = "missing required Host header"
	case count == 1:
		n.host = host
	}
	for k, vv := range req.Header {
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

// hostField returns the first Host field's value in a head textproto has
// already accepted, and how many Host fields there are. It reads the
// lines as textproto does (the name is what precedes the first colon, the
// value is trimmed of blanks, and line ends of CR LF or LF) and gives up,
// folded, on a line that continues the one before, which textproto joins.
func hostField(head []byte) (value string, count int, folded bool) {
	_, rest, _ := bytes.Cut(head, []byte("\n")) // the request line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return "", 0, true
		}
		name, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isHost(name) {
			continue // the blank line that ends the head, or another field
		}
		if count++; count == 1 {
			value = string(bytes.TrimRight(bytes.TrimLeft(v, " \t"), " \t\r\n"))
		}
	}
	return value, count, false
}

// isHost reports whether a field name is Host in any ASCII case (the only
// case textproto folds; it refuses names with other bytes).
func isHost(name []byte) bool {
	const want = "host"
	if len(name) != len(want) {
		return false
	}
	for i := range name {
		if name[i]|0x20 != want[i] {
			return false
		}
	}
	return true
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
