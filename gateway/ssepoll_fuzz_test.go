package gateway

import (
	"bytes"
	"io"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// chunked reads b in pieces of the sizes sizes gives (cycled), as a
// network would deliver it.
type chunked struct {
	b     []byte
	sizes []byte
	i     int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)])%64 + 1
		c.i++
	}
	n = min(n, len(p), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func (c *chunked) Close() error { return nil }

// watch reads stream through a closeWatch in pieces and says what it
// passed and whether (and with what retry) it closed the client's stream.
func watch(t *testing.T, stream, sizes []byte) ([]byte, int, time.Duration) {
	fired := 0
	var retry time.Duration
	w := newCloseWatch(&chunked{b: stream, sizes: sizes}, func(a sdk.CloseSSEStreamArgs) { fired++; retry = a.RetryAfter })
	out, err := io.ReadAll(w)
	if err != nil {
		t.Fatal(err)
	}
	return out, fired, retry
}

// FuzzCloseWatch: whatever the stream and however it is cut, closeWatch
// passes every byte as it came, closes at most once, and decides the same
// as when the stream comes in one piece.
func FuzzCloseWatch(f *testing.F) {
	f.Add([]byte("event: close\nretry: 10\ndata: \n\n"), []byte{3})
	f.Add([]byte("id: 1\nretry: 10\n\n"), []byte{0})
	f.Add([]byte("retry: 5\r\n\r\ndata: {\"id\":1}\n\n"), []byte{1, 7})
	f.Add([]byte("data: {}\n\nretry: 99999999999999999999999999\n\n"), []byte{40})
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		whole, fw, rw := watch(t, stream, []byte{255})
		cut, fc, rc := watch(t, stream, sizes)
		if !bytes.Equal(whole, stream) || !bytes.Equal(cut, stream) {
			t.Fatal("closeWatch changed the stream")
		}
		if fw > 1 || fc > 1 {
			t.Fatalf("closed %d/%d times", fw, fc)
		}
		if fw != fc || rw != rc {
			t.Fatalf("in one piece: closed %d (retry %s); cut: %d (retry %s)", fw, rw, fc, rc)
		}
	})
}

// TestCloseWatch: the decisions, line by line.
func TestCloseWatch(t *testing.T) {
	for _, tc := range []struct {
		stream string
		fired  int
		retry  time.Duration
	}{
		{"event: close\nretry: 10\ndata: \n\n", 1, 10 * time.Millisecond},
		{"retry:250\r\n\r\n", 1, 250 * time.Millisecond},
		{"retry: 10\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", 0, 0}, // a message after it
		{"id: 7\ndata: \n\nevent: close\nretry: 10\n\n", 0, 0},                        // resumable: the SDK client resumes
		{"data: {}\n\n", 0, 0},
		{"retry: x\n\n", 0, 0},
		{"retry: 10", 0, 0}, // no line end: no field
	} {
		_, fired, retry := watch(t, []byte(tc.stream), nil)
		if fired != tc.fired || retry != tc.retry {
			t.Errorf("%q: closed %d times (retry %s), want %d (%s)", tc.stream, fired, retry, tc.fired, tc.retry)
		}
	}
}
