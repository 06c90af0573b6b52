package testenv

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestNodePeer starts the express.json() echo peer and checks that it reads
// a body as JSON.parse does (the last of two duplicate keys wins).
func TestNodePeer(t *testing.T) {
	if _, _, err := Node(); err != nil {
		t.Skip(err)
	}
	p, err := StartNodePeer("echo.mjs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := http.Post("http://"+p.Addr+"/mcp", "application/json", strings.NewReader(`{"a":1,"a":2}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Parsed map[string]int }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Parsed["a"] != 2 {
		t.Fatalf("express.json() read %v, want a=2", got.Parsed)
	}
}
