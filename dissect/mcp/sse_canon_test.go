package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	_ "unsafe" // go:linkname, to read as the Go SDK's own SSE reader does

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/internal/testenv"
)

// sdkScanEvents is the Go SDK v1.8.0's SSE reader, the one its clients
// read every stream with (Streamable HTTP and HTTP+SSE): the real thing,
// not a model of it, so that the fuzz targets judge agentg's output as
// that client reads it.
//
//go:linkname sdkScanEvents github.com/modelcontextprotocol/go-sdk/mcp.scanEventsLimited
func sdkScanEvents(r io.Reader, maxEventSize int) iter.Seq2[sdk.Event, error]

// reframe runs stream through the path every server event stream takes
// (respWriter.pumpSSE), with a rewrite that lets every message Parse
// accepts through unchanged. It returns what the client gets and the
// messages agentg dissected, in order.
func reframe(t testing.TB, stream []byte) (out []byte, msgs []string) {
	rec := httptest.NewRecorder()
	rewrite := func(d []byte) ([]byte, error) {
		if _, err := wire.Parse(d, wire.Limits{}); err != nil {
			return nil, err
		}
		msgs = append(msgs, string(d))
		return d, nil
	}
	rw := newRespWriter(context.Background(), rec, rewrite, nil, 1<<16)
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.WriteHeader(http.StatusOK)
	rw.Write(stream)
	rw.finish()
	return rec.Body.Bytes(), msgs
}

// compact is a message's JSON without insignificant white space, or ""
// when it is not JSON: readers trim data lines differently.
func compact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return ""
	}
	return b.String()
}

// readerMessages are the messages a client finds in a stream, by its own
// reading: the Go SDK's Streamable HTTP client (events named "" or
// message with data), its 2024-11-05 client (every event), and WHATWG
// readers (SSEReader, as browsers and the TypeScript SDK read, and
// testenv.ReadSSE, written apart from it), each keeping what decodes as
// JSON-RPC.
func readerMessages(out []byte) map[string][]string {
	got := map[string][]string{}
	decodes := func(d []byte) bool {
		_, err := jsonrpc.DecodeMessage(d)
		return err == nil
	}
	for ev, err := range sdkScanEvents(bytes.NewReader(out), 0) {
		if err != nil {
			break
		}
		if !decodes(ev.Data) {
			continue
		}
		got["go-sdk-legacy"] = append(got["go-sdk-legacy"], string(ev.Data))
		if ev.Name == "" || ev.Name == "message" {
			got["go-sdk"] = append(got["go-sdk"], string(ev.Data))
		}
	}
	evs, _ := readAll(bytes.NewReader(out), 0)
	for _, ev := range evs {
		if ev.HasData && (ev.Type == "" || ev.Type == "message") && decodes([]byte(ev.Data)) {
			got["whatwg"] = append(got["whatwg"], ev.Data)
		}
	}
	// And the test clients' own WHATWG reader, written apart from
	// SSEReader.
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		ev, err := testenv.ReadSSE(br)
		if err != nil {
			break
		}
		if (ev.Name == "" || ev.Name == "message") && decodes([]byte(ev.Data)) {
			got["testenv"] = append(got["testenv"], ev.Data)
		}
	}
	return got
}

// checkReframed fails if a client reader finds a message in agentg's
// output that agentg did not dissect: each reader's messages must be
// agentg's, in order (a reader may skip some).
func checkReframed(t testing.TB, in []byte) {
	out, msgs := reframe(t, in)
	if bytes.Contains(out, []byte("\r")) || bytes.HasPrefix(out, wire.BOM) {
		t.Fatalf("output %q has a CR or starts with a byte-order mark", out)
	}
	for reader, rmsgs := range readerMessages(out) {
		j := 0
		for _, m := range rmsgs {
			for j < len(msgs) && compact(msgs[j]) != compact(m) {
				j++
			}
			if j == len(msgs) {
				t.Fatalf("the %s reader finds a message agentg did not dissect: %q\nin:  %q\nout: %q\nagentg's: %q", reader, m, in, out, msgs)
			}
			j++
		}
	}
}

// oddStreams are event streams that the WHATWG algorithm and the Go SDK
// read differently.
var oddStreams = []string{
	"event: message \ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
	"event:\tmessage\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
	": keep-alive\revent: ignored\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
	"\xef\xbb\xbfevent: ignored\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
	"event: notice\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n",
	"event: Message\ndata:  [{\"jsonrpc\":\"2.0\",\"method\":\"x\"}]\n\n",
	"data: {\"jsonrpc\":\"2.0\",\r\ndata: \"method\":\"x\"}\r\rdata: {\"jsonrpc\":\"2.0\",\"method\":\"y\"}\r\n\r\n",
	"event: x\r\revent: endpoint\ndata: /m\n\n",
	"event: endpoint\ndata: /messages?sessionId=abc\n\nid: 7\nretry: 100\n\n: ping\n\n",
	"event: a\nevent: message\ndata:{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n",
}

// Every odd framing, re-framed, reads the same to every client reader.
func TestReframeOdd(t *testing.T) {
	for _, s := range oddStreams {
		checkReframed(t, []byte(s))
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name, typ, data string
		hasData         bool
		want            wire.EventClass
	}{
		{"unnamed", "", `{"jsonrpc":"2.0"}`, true, wire.EventMessage},
		{"message", "message", `{}`, true, wire.EventMessage},
		{"trailing space", "message ", `{}`, true, wire.EventMessage},
		{"tab", "\tmessage", `{}`, true, wire.EventMessage},
		{"no data", "message", "", false, wire.EventOther},
		{"blank data", "message", " \u00a0", true, wire.EventOther},
		{"endpoint", "endpoint", "/messages?sessionId=1", true, wire.EventOther},
		{"named JSON", "notice", `{"jsonrpc":"2.0"}`, true, wire.EventRefused},
		{"named batch after space and BOM", "notice", "\ufeff \n[{}]", true, wire.EventRefused},
		{"case variant", "Message", `{}`, true, wire.EventRefused},
		{"named text", "ping", "hello {", true, wire.EventOther},
	} {
		ev := wire.Event{Type: wire.EventName(tc.typ), Data: tc.data, HasData: tc.hasData, Retry: -1}
		if got := wire.Classify(&ev); got != tc.want {
			t.Errorf("%s: class %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   wire.Event
		want string
		ok   bool
	}{
		{"message", wire.Event{Type: "message", Data: "{}", HasData: true, Retry: -1}, "event: message\ndata: {}\n\n", true},
		{"all fields", wire.Event{Comments: []string{" ping"}, Type: "e", ID: "7", HasID: true, Retry: 10, Data: "a\nb", HasData: true}, ": ping\nevent: e\nid: 7\nretry: 10\ndata: a\ndata: b\n\n", true},
		{"empty data", wire.Event{HasData: true, Retry: -1}, "data: \n\n", true},
		{"reset id", wire.Event{HasID: true, Retry: -1}, "id: \n\n", true},
		{"CR in data", wire.Event{Data: "a\rb", HasData: true, Retry: -1}, "", false},
		{"LF in a comment", wire.Event{Comments: []string{"a\nb"}, Retry: -1}, "", false},
		{"NUL in id", wire.Event{ID: "a\x00", HasID: true, Retry: -1}, "", false},
	} {
		b, ok := wire.AppendEvent([]byte("x"), tc.ev)
		if ok != tc.ok || ok && string(b) != "x"+tc.want || !ok && string(b) != "x" {
			t.Errorf("%s: %q %v, want %q %v", tc.name, b, ok, tc.want, tc.ok)
		}
	}
}

// FuzzReframe: whatever a server sends, no client reader (the Go SDK's,
// for Streamable HTTP and for HTTP+SSE, and the WHATWG algorithm) finds a
// message in what agentg forwards that agentg did not dissect.
func FuzzReframe(f *testing.F) {
	for _, s := range oddStreams {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		"\xef\xbb\xbfid: 1\r\nevent: message\r\ndata: {}\r\n\r\n: ping\r\n\r\n",
		"data: a\rdata: b\r\rretry: 10\nid\x00: x\nid: y\x00\n\n\n",
		":\n\n", "data", "\r\n\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 8<<10 {
			return
		}
		checkReframed(t, in)
	})
}

// BenchmarkReframe is one server event stream of 64 message events through
// pumpSSE: read, classified, handed to a rewrite that keeps each, and
// written anew.
func BenchmarkReframe(b *testing.B) {
	ev := "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"t\",\"progress\":1}}\n\n"
	stream := []byte(strings.Repeat(ev, 64))
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		reframe(b, stream)
	}
}

// readAll reads every event of r; it returns the error that ended it
// unless that is io.EOF (as wire's SSE tests read them).
func readAll(r io.Reader, max int) ([]wire.Event, error) {
	s := wire.NewSSEReader(r, max)
	var evs []wire.Event
	for {
		e, err := s.Next()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, e)
	}
}
