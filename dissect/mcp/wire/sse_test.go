package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// fields is an Event without Raw, for comparing what was read.
type fields struct {
	Type, Data, ID string
	HasData, HasID bool
	Retry          int
	Comments       []string
}

func fieldsOf(e Event) fields {
	return fields{e.Type, e.Data, e.ID, e.HasData, e.HasID, e.Retry, e.Comments}
}

// readAll reads every event of r; it returns the error that ended it
// unless that is io.EOF.
func readAll(r io.Reader, max int) ([]Event, error) {
	s := NewSSEReader(r, max)
	var evs []Event
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

func TestSSERead(t *testing.T) {
	msg := func(data string) fields { return fields{Type: "message", Data: data, HasData: true, Retry: -1} }
	for _, tc := range []struct {
		name, in string
		want     []fields
	}{
		{"LF", "event: message\ndata: {}\n\n", []fields{msg("{}")}},
		{"CRLF", "event: message\r\ndata: {}\r\n\r\n", []fields{msg("{}")}},
		{"CR", "event: message\rdata: {}\r\r", []fields{msg("{}")}},
		{"mixed line ends", "event: message\r\ndata: a\rdata: b\n\r\n", []fields{msg("a\nb")}},
		{"no space after the colon", "event:message\ndata:{}\n\n", []fields{msg("{}")}},
		{"only one space is stripped", "data:  x\n\n", []fields{{Data: " x", HasData: true, Retry: -1}}},
		{"multi-line data", "data: {\ndata: \"a\": 1\ndata: }\n\n", []fields{{Data: "{\n\"a\": 1\n}", HasData: true, Retry: -1}}},
		{"empty data line", "data\n\n", []fields{{HasData: true, Retry: -1}}},
		{"two empty data lines", "data:\ndata:\n\n", []fields{{Data: "\n", HasData: true, Retry: -1}}},
		{"comments kept", ": keep-alive\n\n:\n: x\ndata: 1\n\n", []fields{{Comments: []string{" keep-alive"}, Retry: -1}, {Comments: []string{"", " x"}, Data: "1", HasData: true, Retry: -1}}},
		{"BOM at the start", "\xef\xbb\xbfdata: 1\n\n", []fields{{Data: "1", HasData: true, Retry: -1}}},
		{"a second BOM is text", "\xef\xbb\xbf\xef\xbb\xbfdata: 1\n\n", []fields{{Retry: -1}}},
		{"priming event: id and empty data (2025-11-25)", "id: 0\ndata:\n\n", []fields{{ID: "0", HasID: true, HasData: true, Retry: -1}}},
		{"id and retry kept", "id: s1-42\nretry: 3000\nevent: message\ndata: {}\n\n", []fields{{Type: "message", Data: "{}", HasData: true, ID: "s1-42", HasID: true, Retry: 3000}}},
		{"id with NUL ignored", "id: a\x00b\ndata: 1\n\n", []fields{{Data: "1", HasData: true, Retry: -1}}},
		{"id with NUL keeps an earlier id", "id: a\nid: b\x00\ndata: 1\n\n", []fields{{ID: "a", HasID: true, Data: "1", HasData: true, Retry: -1}}},
		{"empty id resets", "id\ndata: 1\n\n", []fields{{HasID: true, Data: "1", HasData: true, Retry: -1}}},
		{"retry not digits ignored", "retry: 1s\nretry: -1\nretry:\nretry: 1 \ndata: 1\n\n", []fields{{Data: "1", HasData: true, Retry: -1}}},
		{"retry last wins", "retry: 10\nretry: 20\ndata: 1\n\n", []fields{{Data: "1", HasData: true, Retry: 20}}},
		{"unknown fields and names are ignored", "Data: x\nfoo: bar\nevent\ndata: 1\n\n", []fields{{Data: "1", HasData: true, Retry: -1}}},
		{"blank lines between events", "\n\r\n\rdata: 1\n\n\n\ndata: 2\n\n", []fields{{Data: "1", HasData: true, Retry: -1}, {Data: "2", HasData: true, Retry: -1}}},
		{"trailing blank lines come back as an empty event", "data: 1\n\n\n\n", []fields{{Data: "1", HasData: true, Retry: -1}, {Retry: -1}}},
		{"empty stream", "", nil},
		{"colon in the value", "data: a: b\n\n", []fields{{Data: "a: b", HasData: true, Retry: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := readAll(strings.NewReader(tc.in), 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []fields
			var raw []byte
			for _, e := range evs {
				got = append(got, fieldsOf(e))
				raw = append(raw, e.Raw...)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if string(raw) != tc.in {
				t.Errorf("Raw concatenated = %q, want the stream %q", raw, tc.in)
			}
		})
	}
}

func TestSSEErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		events   int
		want     error
	}{
		{"ends inside an event", "data: 1\n\ndata: 2\n", 0, 1, io.ErrUnexpectedEOF},
		{"ends inside a line", "data: 1\n\ndata: 2", 0, 1, io.ErrUnexpectedEOF},
		{"ends after a comment", ": hi\n", 0, 0, io.ErrUnexpectedEOF},
		{"event over the limit", "data: " + strings.Repeat("x", 100) + "\n\n", 64, 0, ErrEventTooLarge},
		{"line with no end over the limit", "data: " + strings.Repeat("x", 10000), 64, 0, ErrEventTooLarge},
		{"many lines over the limit", strings.Repeat("data: x\n", 100) + "\n", 64, 0, ErrEventTooLarge},
		{"events under the limit", "data: 1\n\ndata: " + strings.Repeat("x", 100) + "\n\n", 64, 1, ErrEventTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := readAll(strings.NewReader(tc.in), tc.max)
			if !errors.Is(err, tc.want) || len(evs) != tc.events {
				t.Errorf("%d events, err %v; want %d, %v", len(evs), err, tc.events, tc.want)
			}
		})
	}
	limit := 64
	if _, err := readAll(strings.NewReader("data: "+strings.Repeat("x", limit-len("data: \n\n"))+"\n\n"), limit); err != nil {
		t.Errorf("an event of exactly the limit: %v", err)
	}
}

// A CR that ends an event at the end of what has arrived is not waited on:
// the event is returned before the next byte exists.
func TestSSEDoesNotWaitAfterCR(t *testing.T) {
	pr, pw := io.Pipe()
	s := NewSSEReader(pr, 0)
	go pw.Write([]byte("data: 1\r\n\r"))
	e, err := s.Next()
	if err != nil || e.Data != "1" || string(e.Raw) != "data: 1\r\n\r" {
		t.Fatalf("%+v %v", e, err)
	}
	go func() { pw.Write([]byte("\ndata: 2\r\n\r\n")); pw.Close() }()
	e, err = s.Next()
	if err != nil || e.Data != "2" || string(e.Raw) != "\ndata: 2\r\n\r\n" {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatal(err)
	}
}

func rawOf(evs []Event) []byte {
	var b []byte
	for _, e := range evs {
		b = append(b, e.Raw...)
	}
	return b
}

// withoutTail drops the event of blank lines that can end a stream: whether
// the LF after an event's final CR arrives with the event or after it, and
// so whether it is carried by a last event of its own, depends on the reads.
func withoutTail(evs []Event) []Event {
	if n := len(evs); n > 0 && len(bytes.Trim(evs[n-1].Raw, "\r\n\xef\xbb\xbf")) == 0 {
		return evs[:n-1]
	}
	return evs
}

// chunks reads b in reads of the given sizes, then the rest.
type chunks struct {
	b     []byte
	sizes []int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := len(c.b)
	if len(c.sizes) > 0 {
		n, c.sizes = min(c.sizes[0], n), c.sizes[1:]
	}
	n = copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// checkSplits reads stream whole, a byte at a time, and split in two at
// every byte boundary, and requires the same events and the same bytes.
func checkSplits(t *testing.T, stream []byte) {
	t.Helper()
	want, wantErr := readAll(bytes.NewReader(stream), 0)
	wantRaw := rawOf(want)
	want = withoutTail(want)
	try := func(how string, r io.Reader) {
		got, err := readAll(r, 0)
		raw := rawOf(got)
		got = withoutTail(got)
		if (err == nil) != (wantErr == nil) || len(got) != len(want) {
			t.Fatalf("%s: %d events, err %v; whole: %d, %v", how, len(got), err, len(want), wantErr)
		}
		for i := range got {
			if !reflect.DeepEqual(fieldsOf(got[i]), fieldsOf(want[i])) {
				t.Fatalf("%s: event %d = %+v, whole: %+v", how, i, fieldsOf(got[i]), fieldsOf(want[i]))
			}
		}
		if !bytes.Equal(raw, wantRaw) {
			t.Fatalf("%s: bytes differ", how)
		}
	}
	try("one byte at a time", iotest.OneByteReader(bytes.NewReader(stream)))
	for i := 1; i < len(stream); i++ {
		try(fmt.Sprintf("split at %d", i), &chunks{b: stream, sizes: []int{i}})
	}
}

func TestSSESplitInvariance(t *testing.T) {
	for _, stream := range []string{
		"\xef\xbb\xbfid: 1\r\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n: ping\r\n\r\nretry: 500\rdata: x\r\r\n\ndata: y\n\n",
		"data: 1\r\r\n\r\n",
		"000\n\r\n",
		"id: 0\ndata:\n\nid: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
	} {
		checkSplits(t, []byte(stream))
	}
}

func TestWriteEvent(t *testing.T) {
	for _, e := range []Event{
		MessageEvent([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"denied"}}`)),
		{Type: "message", Data: "a\nb\n", HasData: true, ID: "s-1", HasID: true, Retry: 3000, Comments: []string{" note"}},
		{Data: " leading space", HasData: true, Retry: -1},
		{HasID: true, HasData: true, Retry: -1}, // a priming event: empty id, empty data
		{Type: "endpoint", Data: "/messages?sessionId=1", HasData: true, Retry: -1},
		{Comments: []string{" keep-alive"}, Retry: -1},
		{Retry: 0, HasData: true},
	} {
		var b bytes.Buffer
		if err := WriteEvent(&b, e); err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		evs, err := readAll(bytes.NewReader(b.Bytes()), 0)
		if err != nil || len(evs) != 1 || !reflect.DeepEqual(fieldsOf(evs[0]), fieldsOf(e)) || !bytes.Equal(evs[0].Raw, b.Bytes()) {
			t.Errorf("%+v written as %q read back as %+v, %v", e, b.Bytes(), evs, err)
		}
	}
	for _, e := range []Event{
		{Type: "a\nb"}, {ID: "a\rb", HasID: true}, {ID: "a\x00", HasID: true}, {Data: "a\rb"}, {Comments: []string{"a\nb"}},
	} {
		if err := WriteEvent(io.Discard, e); err == nil {
			t.Errorf("WriteEvent(%+v) framed a field it cannot", e)
		}
	}
}

func BenchmarkSSERead(b *testing.B) {
	ev := "event: message\nid: 42\ndata: " + `{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 900) + `"}]}}` + "\n\n"
	stream := []byte(strings.Repeat(ev, 64))
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewSSEReader(bytes.NewReader(stream), 0)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}
}
