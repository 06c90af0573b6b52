package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A proxy streams a request body and its answer at the same time: an
// upstream that starts answering (an event stream flushed at once, as MCP
// servers do) before the request body has ended must still get the whole
// body, and the client the whole answer. net/http's server, left alone,
// discards an unread request body once the handler writes its response,
// racing the forwarder that is still sending that body upstream (which
// then cut SSE answers short, seen as "unexpected EOF" in the MCP bench).
func TestRequestBodyAndAnswerStreamTogether(t *testing.T) {
	up := newUpstream(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex() // the origin is net/http too
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: started\n\n")
		http.NewResponseController(w).Flush()
		b, err := io.ReadAll(r.Body)
		io.WriteString(w, "data: got "+itoa(len(b))+" "+errString(err)+"\n\n")
	}))
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST http://allowed.test:"+up.port+"/ HTTP/1.1\r\nHost: allowed.test:"+up.port+"\r\nContent-Length: 10\r\n\r\nfirst")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer before the body ended: %v", err)
	}
	body := bufio.NewReader(resp.Body)
	if _, err := body.ReadString('\n'); err != nil {
		t.Fatalf("first event: %v", err)
	}
	io.WriteString(c, "-half")
	rest, err := io.ReadAll(body)
	if err != nil || !strings.Contains(string(rest), "got 10 <nil>") {
		t.Fatalf("the upstream did not get the whole body, or the answer was cut: %q %v", rest, err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
