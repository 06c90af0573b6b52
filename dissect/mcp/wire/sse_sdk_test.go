package wire

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// reframer is an HTTP proxy in front of an MCP server that reads every SSE
// response with SSEReader and passes each event on: message events written
// anew with WriteEvent (the path a rewritten event takes), every other
// event as its Raw bytes. It records what the server sent.
type reframer struct {
	t        *testing.T
	upstream string
	client   *http.Client
	mu       sync.Mutex
	streams  [][]byte
	messages int
}

func (p *reframer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	upstream := p.upstream
	p.mu.Unlock()
	out, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		p.t.Error(err)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	writeHead(w, resp)
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/event-stream" {
		io.Copy(w, resp.Body)
		return
	}
	var rec bytes.Buffer
	defer func() {
		p.mu.Lock()
		p.streams = append(p.streams, rec.Bytes())
		p.mu.Unlock()
	}()
	events := NewSSEReader(io.TeeReader(resp.Body, &rec), 0)
	for {
		e, err := events.Next()
		if err != nil {
			if err != io.EOF && r.Context().Err() == nil { // not the client hanging up
				p.t.Errorf("SSE from the SDK server: %v", err)
			}
			return
		}
		if e.HasData && (e.Type == "" || e.Type == "message") {
			body, err := Parse([]byte(e.Data), Limits{})
			if err != nil {
				p.t.Errorf("SSE message from the SDK server: %v\n%s", err, e.Data)
				return
			}
			ne := MessageEvent(body.Messages[0].Raw)
			ne.ID, ne.HasID, ne.Retry = e.ID, e.HasID, e.Retry
			if err := WriteEvent(w, ne); err != nil {
				p.t.Error(err)
				return
			}
			p.mu.Lock()
			p.messages++
			p.mu.Unlock()
		} else if _, err := w.Write(e.Raw); err != nil {
			return
		}
		http.NewResponseController(w).Flush()
	}
}

// The SDK's streamable HTTP client works through SSEReader and WriteEvent:
// progress notifications and results arrive, event by event, at every
// revision that streams; and the streams the SDK's server wrote read the
// same whatever the read boundaries.
func TestSSEWithSDK(t *testing.T) {
	direct := &http.Client{Transport: &http.Transport{Proxy: nil}}
	stateful := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return sdkServer() }, nil))
	defer stateful.Close()
	stateless := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return sdkServer() },
		&mcp.StreamableHTTPOptions{Stateless: true}))
	defer stateless.Close()
	rf := &reframer{t: t, client: direct}
	proxy := httptest.NewServer(rf)
	defer proxy.Close()

	for _, rev := range []string{"2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"} {
		rf.mu.Lock()
		rf.upstream = stateful.URL
		if rev == "2026-07-28" {
			rf.upstream = stateless.URL // the SDK serves 2026-07-28 statelessly
		}
		rf.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var progress atomic.Int32
		client := mcp.NewClient(&mcp.Implementation{Name: "sse-test", Version: "1"}, &mcp.ClientOptions{
			ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) },
		})
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: proxy.URL, HTTPClient: direct, DisableStandaloneSSE: true},
			&mcp.ClientSessionOptions{ProtocolVersion: rev})
		if err != nil {
			t.Fatalf("%s: connect through the reframer: %v", rev, err)
		}
		params := &mcp.CallToolParams{Name: "progress"}
		params.SetProgressToken("tok-1")
		res, err := cs.CallTool(ctx, params)
		if err != nil || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "done" {
			t.Fatalf("%s: tools/call progress: %+v %v", rev, res, err)
		}
		// The client hands notifications to their handler on its own
		// goroutine, so the last may be counted after the result.
		for deadline := time.Now().Add(5 * time.Second); progress.Load() < 3 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if n := progress.Load(); n != 3 {
			t.Errorf("%s: %d progress notifications arrived, want 3", rev, n)
		}
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "x\ny"}})
		if err != nil || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "hello x\ny") {
			t.Fatalf("%s: tools/call greet: %+v %v", rev, res, err)
		}
		cs.Close()
		cancel()
	}
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.messages < 8 || len(rf.streams) < 4 {
		t.Fatalf("only %d messages in %d SSE streams went through the reframer", rf.messages, len(rf.streams))
	}
	for _, s := range rf.streams {
		checkSplits(t, s)
	}
}

// writeHead writes an upstream answer's header and status, as a
// forwarder does, for the body to follow.
func writeHead(w http.ResponseWriter, resp *http.Response) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
}
