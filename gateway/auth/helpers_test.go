package auth

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// Tests serve the Authenticator's Middleware on a real loopback
// http.Server in front of a handler that records every request it is
// reached by: until the gateway door is merged, that handler stands where
// the door's upstream would be, and "nothing reached it" is shown by its
// count after a later good request, never by a pause.

// livePolicy is a Policy a test can swap, as a reload does.
type livePolicy struct{ e atomic.Pointer[rules.Engine] }

func (p *livePolicy) Engine() *rules.Engine { return p.e.Load() }

func loadPolicy(t testing.TB, dir, body string) *rules.Engine {
	t.Helper()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := rules.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// lockedBuffer is the event log: written by the server, read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// events returns the decision events logged so far.
func (l *lockedBuffer) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("event line %q: %v", line, err)
		}
		if m["message"] == "decision" {
			out = append(out, m)
		}
	}
	return out
}

// door is a loopback server: the Middleware, then a handler that counts.
type door struct {
	url     string
	a       *Authenticator
	log     *lockedBuffer
	mu      sync.Mutex
	reached []Identity
	srv     *http.Server
}

func (d *door) seen() []Identity {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Identity(nil), d.reached...)
}

func startDoor(t *testing.T, o Options, tlsCfg *tls.Config) *door {
	t.Helper()
	d := &door{log: &lockedBuffer{}}
	o.Log = audit.New(d.log)
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	d.a = a
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := FromContext(r.Context())
		if !ok {
			t.Error("the handler was reached without an identity")
		}
		if v := r.Header.Values("Authorization"); len(v) != 0 {
			t.Errorf("the handler got the gateway credential: %d Authorization headers", len(v))
		}
		d.mu.Lock()
		d.reached = append(d.reached, id)
		d.mu.Unlock()
		io.WriteString(w, "reached "+id.Agent)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	go d.srv.Serve(ln)
	t.Cleanup(func() { d.srv.Close() })
	d.url = scheme + "://" + ln.Addr().String() + "/mcp"
	return d
}

// answer is what a client got.
type answer struct {
	status    int
	challenge string
	body      string
}

// call sends one POST with the given Authorization values (none when
// empty) through c (a plain client when nil).
func (d *door) call(t *testing.T, c *http.Client, auth ...string) answer {
	t.Helper()
	if c == nil {
		c = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	}
	req, err := http.NewRequest(http.MethodPost, d.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range auth {
		req.Header.Add("Authorization", v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", d.url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: string(b)}
}

// refusals are the gateway-auth events logged so far.
func (d *door) refusals(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range d.log.events(t) {
		if e["rule"] == RuleAuth {
			out = append(out, e)
		}
	}
	return out
}

// noSecrets fails when any secret appears in what agentg wrote.
func noSecrets(t *testing.T, written string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(written, s) {
			t.Errorf("a secret value appears in the event log")
		}
	}
}
