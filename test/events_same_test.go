package test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// One event is the same in every sink: the log file, the admin API's
// live stream (what the console follows), its replay of recent events
// (what the console shows on sign-in) and `agentg events --json` print
// the same JSON object, field for field, for every kind: DNS queries
// (whose events the filter pools and clears once logged: a sink sharing
// that memory lost qtype, rcode and upstream), HTTP exchanges, tunnels
// and MCP calls.
func TestEventsSameInEverySink(t *testing.T) {
	up, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{Records: []string{
		"allowed.test. 60 IN A 93.184.216.34",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	dir := t.TempDir()
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	s := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA})
	policy := `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [mcp.test, allowed.test, marker.test]
resolve:
  mcp.test: [127.0.0.1]
intercept: [mcp.test]
dns:
  upstreams: ["` + up.Addr + `"]
` + mcpBase
	a := startAdminAgentg(t, testenv.AgentgConfig{Dir: filepath.Join(dir, "agentg"), Policy: policy,
		Args: []string{"--upstream-ca", caFile}})
	if len(a.DNS) == 0 {
		t.Fatal("the DNS filter is not listening")
	}

	// The live stream, open before any traffic.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opened := make(chan struct{})
	streamed := make(chan admin.StreamEvent, 256)
	go a.client.Events(ctx, admin.EventsRequest{Follow: true}, func() { close(opened) },
		func(ev admin.StreamEvent) error { streamed <- ev; return nil })
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("the event stream did not open")
	}

	// DNS: an answer from upstream, the same from the cache, a refusal.
	dnsAsk(t, a.DNS[0], "udp", "allowed.test", mdns.TypeA)
	dnsAsk(t, a.DNS[0], "udp", "allowed.test", mdns.TypeA)
	dnsAsk(t, a.DNS[0], "udp", "blocked.test", mdns.TypeAAAA)
	// HTTP: a refusal by the host rules.
	proxied := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	if resp, err := proxied.Get("http://blocked.test/"); err == nil {
		resp.Body.Close()
	}
	// MCP through interception: an allowed call and a denied one.
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := testenv.ConnectMCP(mcpCtx(t), s.Mode, s.URL, testenv.MCPClientConfig{Proxy: a.URL(), Roots: pool, Revision: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"city": "Oslo"}
	res, err := callTool(t, cl, testenv.MCPToolEcho, args)
	wantEcho(t, res, err, args)
	res, err = callTool(t, cl, testenv.MCPToolDelete, nil)
	wantDenied(t, res, err, "no-delete")
	cl.Close()
	// The marker: once its event is logged, every event above is.
	dnsAsk(t, a.DNS[0], "udp", "marker.test", mdns.TypeTXT)
	if _, err := a.WaitEvent(ctx, func(m map[string]any) bool { return m["kind"] == "dns" && m["host"] == "marker.test" }); err != nil {
		t.Fatal(err)
	}

	// The log file is flushed every 100 ms: read it until it holds the
	// marker too.
	var logged []map[string]any
	for tick := time.NewTicker(20 * time.Millisecond); ; {
		logged = readLogEvents(t, a.LogFile)
		if hasMarker(byID(logged)) {
			tick.Stop()
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the log file never held the marker's event (%d events)", len(logged))
		}
	}
	kinds := map[string]bool{}
	for _, ev := range logged {
		kinds[ev["kind"].(string)] = true
	}
	for _, k := range []string{"dns", "http", "mcp"} {
		if !kinds[k] {
			t.Fatalf("the log has no %s event: %v", k, kinds)
		}
	}
	var dnsFields bool
	for _, ev := range logged {
		dnsFields = dnsFields || ev["kind"] == "dns" && ev["qtype"] != nil && ev["rcode"] != nil && ev["upstream"] != nil
	}
	if !dnsFields {
		t.Fatal("no logged DNS event has qtype, rcode and upstream: nothing to compare")
	}

	// The stream, until it has carried the marker's event.
	fromStream := map[string]map[string]any{}
	for len(fromStream) == 0 || !hasMarker(fromStream) {
		select {
		case ev := <-streamed:
			var m map[string]any
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				t.Fatalf("streamed %q: %v", ev.Data, err)
			}
			fromStream[m["id"].(string)] = m
		case <-ctx.Done():
			t.Fatalf("the stream never carried the marker's event (%d events)", len(fromStream))
		}
	}
	// The replay, through the API and through the CLI.
	fromReplay := map[string]map[string]any{}
	if err := a.client.Events(ctx, admin.EventsRequest{Last: 1000}, nil, func(ev admin.StreamEvent) error {
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			return err
		}
		fromReplay[m["id"].(string)] = m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	code, out := runAgentg(t, "events", "--json", "--last", "1000", "--admin", a.AdminAddr, "--data-dir", a.DataDir)
	if code != 0 {
		t.Fatalf("agentg events: %d\n%s", code, out)
	}
	fromCLI := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("agentg events --json line %q: %v", line, err)
		}
		fromCLI[m["id"].(string)] = m
	}

	for _, ev := range logged {
		id := ev["id"].(string)
		for name, sink := range map[string]map[string]map[string]any{"stream": fromStream, "replay": fromReplay, "events --json": fromCLI} {
			got, ok := sink[id]
			if !ok {
				t.Errorf("%s lacks event %s (%s %v)", name, id, ev["kind"], ev["host"])
				continue
			}
			if !reflect.DeepEqual(got, ev) {
				t.Errorf("%s event %s differs from the log's:\n log: %v\n %s: %v", name, id, ev, name, got)
			}
		}
	}
}

func byID(evs []map[string]any) map[string]map[string]any {
	m := make(map[string]map[string]any, len(evs))
	for _, ev := range evs {
		m[ev["id"].(string)] = ev
	}
	return m
}

func hasMarker(evs map[string]map[string]any) bool {
	for _, m := range evs {
		if m["kind"] == "dns" && m["host"] == "marker.test" {
			return true
		}
	}
	return false
}

// readLogEvents reads every event of an agentg log file.
func readLogEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["id"] == nil {
			continue // not an event (agentg's own log lines go to stderr)
		}
		evs = append(evs, m)
	}
	return evs
}
