package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogFields(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	start := time.Date(2026, 11, 24, 15, 4, 5, 123456000, time.UTC)
	l.Log(&Event{
		Time: start, Kind: "http", Agent: "builder", Client: "127.0.0.1:5", Method: "GET", Scheme: "http",
		Host: "example.com", Port: 80, IP: "93.184.216.34", Path: "/x", Decision: "allow", Rule: "r1",
		RuleSource: "p.yaml:3", Status: 200, BytesUp: 1, BytesDown: 2, Duration: 1500 * time.Microsecond,
	})
	l.Log(&Event{Time: start, Kind: "connect", Host: "h", Decision: "deny", Rule: "default"})

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var full, sparse map[string]any
	json.Unmarshal([]byte(lines[0]), &full)
	json.Unmarshal([]byte(lines[1]), &sparse)
	want := map[string]any{
		"time": "2026-11-24T15:04:05.123456Z", "kind": "http", "agent": "builder", "client": "127.0.0.1:5",
		"method": "GET", "scheme": "http", "host": "example.com", "port": 80.0, "ip": "93.184.216.34",
		"path": "/x", "decision": "allow", "rule": "r1", "rule_source": "p.yaml:3", "status": 200.0,
		"bytes_up": 1.0, "bytes_down": 2.0, "duration_ms": 1.5, "message": "decision",
	}
	for k, v := range want {
		if full[k] != v {
			t.Errorf("%s = %v, want %v", k, full[k], v)
		}
	}
	for _, k := range []string{"method", "ip", "path", "status", "error", "tls", "rule_source", "port"} {
		if _, ok := sparse[k]; ok {
			t.Errorf("zero-valued %s was written: %s", k, lines[1])
		}
	}
	for _, k := range []string{"agent", "client", "bytes_up", "bytes_down", "decision", "rule"} {
		if _, ok := sparse[k]; !ok {
			t.Errorf("always-present %s is missing: %s", k, lines[1])
		}
	}
}

// Concurrent events never interleave: every line is one whole event.
func TestLogConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "events.jsonl")
	for round := 0; round < 2; round++ { // the second open appends
		f, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		l := New(f)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					l.Log(&Event{Kind: "http", Host: strings.Repeat("h", 500), Decision: "allow", Rule: "r"})
				}
			}()
		}
		wg.Wait()
		f.Close()
	}
	f, _ := os.Open(path)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<16)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not one JSON object: %v", n, err)
		}
		n++
	}
	if n != 2*8*200 {
		t.Errorf("%d lines, want %d", n, 2*8*200)
	}
}

func TestIDsAndParent(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	seen := map[string]bool{}
	for range 1000 {
		id := l.NewID()
		if id == "" || seen[id] {
			t.Fatalf("id %q empty or repeated", id)
		}
		seen[id] = true
	}
	if other := New(&buf).NewID(); seen[other] {
		t.Fatalf("a second logger repeated id %q", other)
	}
	tunnel := l.NewID()
	l.Log(&Event{ID: l.NewID(), Parent: tunnel, Time: time.Now(), Kind: "http", Decision: "allow", Rule: "r"})
	var ev map[string]any
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["parent"] != tunnel || ev["id"] == "" || ev["id"] == tunnel {
		t.Fatalf("id/parent wrong: %v", ev)
	}
}

func TestMCPFields(t *testing.T) {
	var buf bytes.Buffer
	New(&buf).Log(&Event{Time: time.Now(), Kind: "mcp", Method: "tools/call", Decision: "deny", Rule: "no-delete",
		MCP: &MCP{Server: "jira", Tool: "delete_project", Args: strings.Repeat("x", MaxArgs+10),
			Redactions: []string{"aws"}, ErrorCode: -32001, Upstream: 1500 * time.Microsecond}})
	var ev map[string]any
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["server"] != "jira" || ev["tool"] != "delete_project" || ev["method"] != "tools/call" ||
		ev["error_code"] != -32001.0 || ev["upstream_ms"] != 1.5 || len(ev["args"].(string)) != MaxArgs {
		t.Fatalf("mcp fields wrong: %v", ev)
	}
}
