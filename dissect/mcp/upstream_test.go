package mcp

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// An exchange no door bound an upstream to is refused, with its event,
// never read as if it could be forwarded. The guard runs behind a real
// listener and is reached by a real client.
func TestGuardRefusesAnExchangeWithoutUpstream(t *testing.T) {
	eng, err := rules.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.NewMemory(store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var log bytes.Buffer
	g := &Guard{Log: audit.New(&log), State: st, Limits: limit.NewRates(limit.Options{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Serve(w, r, Exchange{Engine: eng, Server: "srv", Parent: "p", Host: "mcp.test"})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	resp, err := http.Post("http://"+ln.Addr().String()+"/mcp", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if !strings.Contains(log.String(), `"rule":"builtin:mcp-no-upstream"`) {
		t.Fatalf("no event names the refusal: %s", log.String())
	}
}
