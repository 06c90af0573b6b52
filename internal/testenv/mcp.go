package testenv

// MCP servers for end-to-end tests and benchmarks: the official Go SDK
// (github.com/modelcontextprotocol/go-sdk) serving a fixed set of tools on
// loopback, in each transport the SDK has. Nothing here parses MCP; the
// SDK does, so agentg's dissector is tested against what a real server
// accepts and sends, never against a mock that agrees with it.

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPMode is how an MCPServer serves MCP.
type MCPMode int

const (
	// MCPStateful is Streamable HTTP with sessions (Mcp-Session-Id, a GET
	// stream, DELETE), answering requests with text/event-stream. The SDK
	// negotiates 2024-11-05 through 2025-11-25 here and refuses 2026-07-28,
	// which it serves only statelessly.
	MCPStateful MCPMode = iota
	// MCPStatefulJSON is MCPStateful answering with application/json
	// (StreamableHTTPOptions.JSONResponse); notifications a request causes
	// go to the session's GET stream instead.
	MCPStatefulJSON
	// MCPStateless is Streamable HTTP without sessions
	// (StreamableHTTPOptions.Stateless): 2026-07-28 (server/discover,
	// per-request _meta, Mcp-Method/Mcp-Name checked against the body), and
	// older revisions on a throwaway session per request. SSE answers.
	MCPStateless
	// MCPStatelessJSON is MCPStateless answering with application/json.
	MCPStatelessJSON
	// MCPLegacySSE is the 2024-11-05 HTTP+SSE transport (mcp.SSEHandler):
	// a GET stream whose first event names the URI to POST to; the POSTs
	// are answered 202 and every response arrives on the GET stream.
	MCPLegacySSE
)

// MCPModes lists every mode, for tests that run each.
var MCPModes = []MCPMode{MCPStateful, MCPStatefulJSON, MCPStateless, MCPStatelessJSON, MCPLegacySSE}

func (m MCPMode) String() string {
	switch m {
	case MCPStateful:
		return "stateful-sse"
	case MCPStatefulJSON:
		return "stateful-json"
	case MCPStateless:
		return "stateless-sse"
	case MCPStatelessJSON:
		return "stateless-json"
	case MCPLegacySSE:
		return "legacy-sse"
	}
	return fmt.Sprintf("MCPMode(%d)", int(m))
}

// Revisions are the protocol revisions a client is meant to speak to a
// server in this mode, oldest first: what the spec pairs with the
// transport (the SDK's stateful handler would also take 2024-11-05 on
// Streamable HTTP, which no real client sends).
func (m MCPMode) Revisions() []string {
	switch m {
	case MCPStateful, MCPStatefulJSON:
		return []string{"2025-03-26", "2025-06-18", "2025-11-25"}
	case MCPStateless, MCPStatelessJSON:
		return []string{"2026-07-28"}
	case MCPLegacySSE:
		return []string{"2024-11-05"}
	}
	return nil
}

// JSON reports whether requests are answered with application/json.
func (m MCPMode) JSON() bool { return m == MCPStatefulJSON || m == MCPStatelessJSON }

// Stateful reports whether the server keeps sessions (Mcp-Session-Id, or
// the legacy GET stream).
func (m MCPMode) Stateful() bool { return m != MCPStateless && m != MCPStatelessJSON }

// MCPServerConfig says how to run an MCPServer.
type MCPServerConfig struct {
	Mode MCPMode
	// CA issues the server's leaf for Hosts; nil serves plain http://.
	CA *CA
	// Hosts are the names in the leaf; default ["mcp.test"].
	Hosts []string
	// Name is the serverInfo.name the server claims; default "peer". A
	// policy must never take its server name from here.
	Name string
	// PageSize is tools/list's page size (ServerOptions.PageSize); 0 is
	// the SDK's default of 1000, so nothing pages.
	PageSize int
	// Filler adds this many tools named filler_000, filler_001, … that
	// echo, so that tools/list has pages to turn.
	Filler int
	// SplitWrites, when positive, delivers every write of a response body
	// in pieces of this many bytes, each flushed on its own: SSE events and
	// JSON bodies reach the proxy cut at arbitrary points.
	SplitWrites int
	// GzipResponses compresses every response body with gzip whatever the
	// request's Accept-Encoding says, as a misbehaving server or a CDN in
	// front of one does.
	GzipResponses bool
	// Resumable keeps every stream's events in the SDK's
	// MemoryEventStore, so a GET with Last-Event-ID replays them.
	Resumable bool
	// Secret is what the secret tool returns; default MCPSecret.
	Secret string
	// StepTimeout bounds how long the slow tool waits for each Advance;
	// default 10s.
	StepTimeout time.Duration
	// Listener, when set, is where the server listens instead of a free
	// loopback port.
	Listener net.Listener
}

// MCPServer is a Go SDK MCP server on loopback that records every HTTP
// request it receives and counts every tool run. Close it when done.
type MCPServer struct {
	Mode MCPMode
	// URL is the MCP endpoint as a client names it:
	// https://mcp.test:PORT/mcp (http:// without a CA). For the legacy
	// transport it is the SSE endpoint the client GETs. The server answers
	// any path the same way, so tests may use /mcp/anything to tell their
	// requests apart.
	URL  string
	Addr string // 127.0.0.1:PORT, what a direct client dials
	Port string
	// Server is the SDK server, for tools a test adds itself.
	Server *mcp.Server

	cfg   MCPServerConfig
	up    *Upstream
	tools *mcpTools
	reads *mcpReads // mcp_reads.go

	mu   sync.Mutex
	reqs []MCPRequest
}

// MCPRequest is one HTTP request an MCPServer received, as it arrived.
type MCPRequest struct {
	Method string
	Path   string // path and query
	Header http.Header
	Body   []byte
	Err    error // reading the body failed (a proxy cut it short)
}

// StartMCPServer serves cfg's mode on a free loopback port.
func StartMCPServer(cfg MCPServerConfig) (*MCPServer, error) {
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{"mcp.test"}
	}
	if cfg.Name == "" {
		cfg.Name = "peer"
	}
	if cfg.Secret == "" {
		cfg.Secret = MCPSecret
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 10 * time.Second
	}
	s := &MCPServer{Mode: cfg.Mode, cfg: cfg}
	s.Server = mcp.NewServer(&mcp.Implementation{Name: cfg.Name, Version: "1.0.0"}, &mcp.ServerOptions{PageSize: cfg.PageSize})
	s.tools = newMCPTools(s.Server, cfg)
	s.reads = newMCPReads(s.Server)

	var h http.Handler
	getServer := func(*http.Request) *mcp.Server { return s.Server }
	switch cfg.Mode {
	case MCPStateful, MCPStatefulJSON, MCPStateless, MCPStatelessJSON:
		h = mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
			Stateless:    !cfg.Mode.Stateful(),
			JSONResponse: cfg.Mode.JSON(),
			// The client names mcp.test and the listener is loopback:
			// without this the SDK answers 403 (DNS rebinding guard).
			DisableLocalhostProtection: true,
			EventStore:                 eventStore(cfg.Resumable),
		})
	case MCPLegacySSE:
		h = mcp.NewSSEHandler(getServer, &mcp.SSEOptions{DisableLocalhostProtection: true})
	default:
		return nil, fmt.Errorf("start MCP server: unknown mode %v", cfg.Mode)
	}
	if cfg.GzipResponses {
		h = gzipAlways(h)
	}
	if cfg.SplitWrites > 0 {
		h = splitWrites(h, cfg.SplitWrites)
	}
	h = s.record(h)

	opts := UpstreamOptions{Handler: h, Quiet: true, Listener: cfg.Listener}
	scheme := "http"
	if cfg.CA != nil {
		cert, err := cfg.CA.Leaf(cfg.Hosts, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("start MCP server: %w", err)
		}
		opts.Cert = &cert
		scheme = "https"
	}
	s.up = StartUpstream(opts)
	s.Port = s.up.Port
	s.Addr = s.up.Listener.Addr().String()
	s.URL = scheme + "://" + net.JoinHostPort(cfg.Hosts[0], s.Port) + "/mcp"
	return s, nil
}

// Endpoint is the server's URL with another path (which must start with
// /): the server answers every path alike.
func (s *MCPServer) Endpoint(path string) string {
	return s.URL[:len(s.URL)-len("/mcp")] + path
}

// Close ends every session and stops the server. Open streams (the
// legacy and stateful GET streams hang until their client leaves) are cut
// first, or closing would wait for them.
func (s *MCPServer) Close() {
	for ss := range s.Server.Sessions() {
		ss.Close()
	}
	s.up.CloseClientConnections()
	s.up.Close()
}

// Calls is how many times tool has run.
func (s *MCPServer) Calls(tool string) int64 { return s.tools.calls(tool) }

// LastArguments are the arguments tool last ran with, as the server
// received them; nil if it never ran.
func (s *MCPServer) LastArguments(tool string) []byte { return s.tools.lastArgs(tool) }

// SetDescription replaces tool's definition with one whose description
// is desc (the same handler): a rug pull. The SDK then sends
// notifications/tools/list_changed to the sessions that get it.
func (s *MCPServer) SetDescription(tool, desc string) error {
	return s.tools.setDescription(tool, desc)
}

// AddEchoTool serves t (InputSchema defaults to any object) with a handler
// that counts its runs and echoes its arguments, like echo.
func (s *MCPServer) AddEchoTool(t *mcp.Tool) { s.tools.addEcho(t) }

// Advance lets the slow tool take its next step; it waits until the tool
// is waiting for it, or until timeout.
func (s *MCPServer) Advance(timeout time.Duration) error { return s.tools.advance(timeout) }

// Requests are the HTTP requests received so far.
func (s *MCPServer) Requests() []MCPRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]MCPRequest(nil), s.reqs...)
}

// RequestsTo are the requests received for path (without its query).
func (s *MCPServer) RequestsTo(path string) []MCPRequest {
	var out []MCPRequest
	for _, r := range s.Requests() {
		p := r.Path
		for i := 0; i < len(p); i++ {
			if p[i] == '?' {
				p = p[:i]
				break
			}
		}
		if p == path {
			out = append(out, r)
		}
	}
	return out
}

// maxRecorded bounds the body kept per request; the rest is read and
// dropped.
const maxRecorded = 1 << 20

// record keeps every request as it arrived, body included, and hands the
// handler the same body.
func (s *MCPServer) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := MCPRequest{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone()}
		body, err := io.ReadAll(r.Body)
		rec.Err = err
		rec.Body = body[:min(len(body), maxRecorded)]
		s.mu.Lock()
		s.reqs = append(s.reqs, rec)
		s.mu.Unlock()
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h.ServeHTTP(w, r)
	})
}

// splitWriter writes each write in pieces of n bytes, flushing after each.
type splitWriter struct {
	http.ResponseWriter
	n int
}

func splitWrites(h http.Handler, n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&splitWriter{ResponseWriter: w, n: n}, r)
	})
}

func (w *splitWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(w.n, len(p))
		m, err := w.ResponseWriter.Write(p[:k])
		written += m
		if err != nil {
			return written, err
		}
		http.NewResponseController(w.ResponseWriter).Flush()
		p = p[k:]
	}
	return written, nil
}

func (w *splitWriter) Flush()                      { http.NewResponseController(w.ResponseWriter).Flush() }
func (w *splitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// gzipWriter compresses the body, flushing the compressor whenever the
// handler flushes so that streams still stream.
type gzipWriter struct {
	http.ResponseWriter
	gz          *gzip.Writer
	wroteHeader bool
}

func gzipAlways(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw := &gzipWriter{ResponseWriter: w, gz: gzip.NewWriter(w)}
		h.ServeHTTP(gw, r)
		if gw.wroteHeader {
			gw.gz.Close()
		}
	})
}

func (w *gzipWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Del("Content-Length")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *gzipWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.gz.Write(p)
}

func (w *gzipWriter) Flush() {
	if w.wroteHeader {
		w.gz.Flush()
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *gzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func eventStore(on bool) mcp.EventStore {
	if !on {
		return nil
	}
	return mcp.NewMemoryEventStore(nil)
}
