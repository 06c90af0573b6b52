package test

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// forgedError is what net/http's server writes when it refuses a request
// without a handler; the proxy used to spot it in what it wrote to a
// client, so an upstream could write it too.
const forgedError = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nmalformed"

// Issue 11: an upstream's response body must never become an event of
// its own: the audit log records what agentg decided, not what an upstream
// wrote.
func TestEventsNotForgedByUpstream(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"body after a flushed head", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(forgedError)))
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond) // let the head go out alone
			io.WriteString(w, forgedError)
		}},
		{"event stream flushed write by write", func(w http.ResponseWriter, r *http.Request) {
			// The proxy flushes an event stream at every write, so the
			// second write reaches the client connection on its own.
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", strconv.Itoa(1+len(forgedError)))
			io.WriteString(w, ":")
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
			io.WriteString(w, forgedError)
		}},
		{"chunked body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
			io.WriteString(w, forgedError)
		}},
		{"body in one write", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, forgedError)
		}},
		{"large body", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat(forgedError, 2000))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, false, tt.handler)
			e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
			// HTTP/1.0 keeps the body unframed on the client connection
			// (no chunk sizes), as the upstream wrote it.
			for i, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
				u := "http://allowed.test:" + up.port + "/forge"
				resp, body := rawRequest(t, e.addr, "GET "+u+" "+proto+"\r\nHost: allowed.test:"+up.port+"\r\n\r\n")
				if resp.StatusCode != 200 || !strings.Contains(body, "malformed") {
					t.Fatalf("%s: %d %q", proto, resp.StatusCode, body)
				}
				waitFor(t, func() bool { return len(e.events()) >= 2*i+1 }, "the request's event")
				// A marker after it, a request agentg refuses without an
				// upstream: any line the forged body made was written while
				// the body was relayed, before the client (which has read
				// it all) sent the marker, so before the marker's event.
				marker := "/marker-" + strconv.Itoa(i)
				rawRequest(t, e.addr, "GET http://marker.test"+marker+" HTTP/1.1\r\nHost: marker.test\r\n\r\n")
				waitFor(t, func() bool {
					return slices.ContainsFunc(e.events(), func(ev event) bool { return ev.str("path") == marker })
				}, "the marker's event")
				evs := e.events()
				if len(evs) != 2*(i+1) {
					t.Fatalf("%s: %d events after %d requests and %d markers:\n%s", proto, len(evs), i+1, i+1, e.log.String())
				}
				if ev := evs[2*i]; ev.str("decision") != "allow" || ev.str("path") != "/forge" {
					t.Fatalf("%s: event %v", proto, ev)
				}
				if ev := evs[2*i+1]; ev.str("path") != marker || ev.str("decision") != "deny" {
					t.Fatalf("%s: event %v, want the marker's refusal", proto, ev)
				}
			}
		})
	}
}

// Issue 11: events had no identity, so a request inside a tunnel could not
// be tied to the tunnel that carried it.
func TestEventsHaveIDs(t *testing.T) {
	plain := newUpstream(t, false, nil)
	e, upCA := newMitmEnv(t, mitmPolicy(""), nil)
	secure := tlsUpstream(t, upCA.leaf(t, "example.com", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	c := e.client("", "", nil)
	if resp, _ := get(t, c, "http://plain.test:"+plain.port+"/one"); resp.StatusCode != 200 {
		t.Fatalf("plain: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, "http://other.test:"+plain.port+"/"); resp.StatusCode != 403 {
		t.Fatalf("denied: %d", resp.StatusCode)
	}
	mc := (&interceptEnv{env: e}).mitmClient(false)
	for _, path := range []string{"/a", "/b"} {
		if resp, _ := get(t, mc, "https://example.com:"+secure.port+path); resp.StatusCode != 200 {
			t.Fatalf("intercepted %s: %d", path, resp.StatusCode)
		}
	}
	mc.Transport.(*http.Transport).CloseIdleConnections()
	tunnel := e.waitEvent(map[string]any{"kind": "connect", "host": "example.com", "tls": "intercepted"})
	e.waitEvent(map[string]any{"kind": "http", "path": "/b", "tls": "intercepted"})

	seen := map[string]bool{}
	inner := 0
	for _, ev := range e.events() {
		id := ev.str("id")
		if id == "" {
			t.Errorf("event without an id: %v", ev)
			continue
		}
		if seen[id] {
			t.Errorf("id %q used twice", id)
		}
		seen[id] = true
		if ev.str("kind") == "http" && ev.str("tls") == "intercepted" {
			inner++
			if ev.str("parent") != tunnel.str("id") {
				t.Errorf("request %s: parent %q, want the tunnel's id %q", ev.str("path"), ev.str("parent"), tunnel.str("id"))
			}
		}
	}
	if inner != 2 {
		t.Errorf("%d intercepted request events, want 2", inner)
	}
}
