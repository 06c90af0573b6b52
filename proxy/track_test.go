package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"sync"
	"testing"
	"time"
)

// The tracker must stay in step with net/http's server whatever the client
// sends: for every request the server hands a handler, the tracker's note
// holds the Host header that request carried (net/http keeps it as r.Host
// for origin-form requests, so the server itself is the oracle), or the
// tracker says it lost count and the request is refused. It must never
// hand a handler another request's Host.
func FuzzHostTracker(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\nGET / HTTP/1.1\nHost: evil\n\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 37\r\n\r\nGET / HTTP/1.1\r\nHost: evil\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: c\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, input []byte) {
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		tr := newHostTracker(sc, 4096, nil, true)
		var mu sync.Mutex
		var wrong []string
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, ok := tr.take()
			if ok && !r.URL.IsAbs() && n.host != r.Host {
				mu.Lock()
				wrong = append(wrong, "note "+n.host+" for a request with Host "+r.Host)
				mu.Unlock()
			}
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			serveConn(t.Context(), tr, "http/1.1", inner{handler: h}, serving{maxHeaderBytes: 4096, readHeaderTimeout: 30 * time.Second})
		}()
		go func() {
			cc.Write(input)
			cc.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, cc)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not finish")
		}
		cc.Close()
		for _, w := range wrong {
			t.Error(w)
		}
	})
}

// hostField must read a head as textproto does: net/http's own reader is
// the oracle for every head http.ReadRequest accepts.
func FuzzHostField(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\nhOsT:\t a.test:80 \t\r\r\nX: y\n\n",
		"GET http://x/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n folded\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		end := bytes.Index(head, []byte("\n\r\n"))
		if e := bytes.Index(head, []byte("\n\n")); e >= 0 && (end < 0 || e < end) {
			end = e - 1
		}
		if end < 0 {
			return
		}
		head = head[:end+3]
		if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head))); err != nil {
			return
		}
		value, count, folded := hostField(head)
		if folded {
			return
		}
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
		tp.ReadLine()
		mh, _ := tp.ReadMIMEHeader()
		hosts := mh["Host"]
		if count != len(hosts) || count > 0 && value != hosts[0] {
			t.Errorf("hostField %q, %d; textproto %q", value, count, hosts)
		}
	})
}

// A feed holds what the parser has not read yet up to feedMax; past that
// the connection's reader waits, until the parser reads or stops.
func TestFeedBoundsWhatWaits(t *testing.T) {
	for _, release := range []string{"read", "stop"} {
		f := newFeed()
		f.write(make([]byte, feedMax))
		wrote := make(chan struct{})
		go func() {
			f.write([]byte("x"))
			close(wrote)
		}()
		select {
		case <-wrote:
			t.Fatalf("%s: a write past feedMax did not wait", release)
		case <-time.After(50 * time.Millisecond):
		}
		if release == "read" {
			if n, err := f.Read(make([]byte, 4096)); n != 4096 || err != nil {
				t.Fatalf("read %d, %v", n, err)
			}
		} else {
			f.stop()
		}
		select {
		case <-wrote:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not let the writer go", release)
		}
	}
	// The end of the stream comes after the bytes before it.
	f := newFeed()
	f.write([]byte("abc"))
	f.close(io.ErrUnexpectedEOF)
	if b, err := io.ReadAll(f); string(b) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%q, %v", b, err)
	}
}
