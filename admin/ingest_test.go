package admin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// A wrap's events are logged as this agentg's, door wrap whatever they
// said; a batch with a line that is not an event is refused whole; the
// token is required.
func TestIngest(t *testing.T) {
	var out lockedBuf
	ts := startServer(t, Config{Log: audit.New(&out)})
	wrapLog := audit.New(&bytes.Buffer{})
	mk := func(tool, door string) []byte {
		return audit.JSON(&audit.Event{ID: wrapLog.NewID(), Time: time.Now(), Kind: "mcp", Agent: "local", Door: door,
			Decision: "deny", Rule: "no-delete", MCP: &audit.MCP{Server: "files", Tool: tool, Redactions: []string{"aws"}}})
	}
	ctx := context.Background()
	if err := ts.client.IngestEvents(ctx, append(mk("delete_project", "wrap"), mk("other", "transparent")...)); err != nil {
		t.Fatal(err)
	}
	logged := out.String()
	if strings.Count(logged, `"door":"wrap"`) != 2 || strings.Contains(logged, "transparent") ||
		!strings.Contains(logged, `"tool":"delete_project"`) || !strings.Contains(logged, `"redactions":["aws"]`) {
		t.Fatalf("logged:\n%s", logged)
	}
	err := ts.client.IngestEvents(ctx, append(mk("third", "wrap"), []byte("not an event\n")...))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "line 2") {
		t.Fatalf("a bad line: %v", err)
	}
	if strings.Contains(out.String(), "third") {
		t.Fatal("a refused batch was logged in part")
	}
	if code, _, _ := ts.request(t, http.MethodPost, "/v1/events/ingest", ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", code)
	}
}
