package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14 item 8: a tool is pinned by its whole definition, canonically.
// A change to _meta, icons or execution alone (a UI resource URI swapped
// for another) is a changed tool; re-ordering, whitespace and escaping
// alone are not.

const pinnedTool = `{"name":"weather","description":"Reads the weather.","inputSchema":{"type":"object","properties":{"city":{"type":"string"}}},` +
	`"annotations":{"readOnlyHint":true},"icons":[{"src":"https://icons.test/w.png"}],"execution":{"taskSupport":"optional"},` +
	`"_meta":{"ui":{"resourceUri":"ui://weather/view"},"n":1.5}}`

// toolServer is a hostile server whose one tool is whatever def holds, and
// which answers every call to it with "ran".
func toolServer(def *atomic.Value) func(method string, id json.RawMessage) []string {
	return func(method string, id json.RawMessage) []string {
		switch method {
		case "tools/list":
			return []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"tools":[%s]}}`, id, def.Load().(string))}
		case "tools/call":
			return []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"ran"}]}}`, id)}
		}
		return []string{fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}`, id)}
	}
}

// listed reports whether tools/list through agentg shows the tool.
func listed(t *testing.T, r *testenv.MCPRaw, id string) bool {
	t.Helper()
	reply, err := r.Call(mcpCtx(t), id, "tools/list", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := reply.ByID(id)
	if m == nil {
		t.Fatalf("no answer to tools/list: %d %s", reply.Status, reply.Body)
	}
	return strings.Contains(string(m), `"weather"`)
}

// called reports whether a call to the tool ran (else agentg refused it).
func called(t *testing.T, r *testenv.MCPRaw, id string) bool {
	t.Helper()
	reply, err := r.Call(mcpCtx(t), id, "tools/call", map[string]any{"name": "weather", "arguments": map[string]any{"city": "Oslo"}})
	if err != nil {
		t.Fatal(err)
	}
	m := reply.ByID(id)
	if m == nil {
		t.Fatalf("no answer to tools/call: %d %s", reply.Status, reply.Body)
	}
	return strings.Contains(string(m), `"ran"`)
}

func TestMCPPinWholeDefinition(t *testing.T) {
	same := []struct{ name, def string }{
		{"members reordered", `{"_meta":{"n":1.50,"ui":{"resourceUri":"ui://weather/view"}},"execution":{"taskSupport":"optional"},"icons":[{"src":"https://icons.test/w.png"}],` +
			`"annotations":{"readOnlyHint":true},"inputSchema":{"properties":{"city":{"type":"string"}},"type":"object"},"description":"Reads the weather.","name":"weather"}`},
		{"whitespace and escapes", strings.NewReplacer(`"Reads`, " \"\\u0052eads", `,`, " ,\n ", `ui://`, `ui:\/\/`).Replace(pinnedTool)},
	}
	changed := []struct{ name, def string }{
		{"_meta", strings.Replace(pinnedTool, "ui://weather/view", "ui://weather/exfiltrate", 1)},
		{"icons", strings.Replace(pinnedTool, "w.png", "x.png", 1)},
		{"execution", strings.Replace(pinnedTool, `"optional"`, `"required"`, 1)},
		{"a number in _meta", strings.Replace(pinnedTool, "1.5", "1.25", 1)},
		{"a new member", strings.TrimSuffix(pinnedTool, "}") + `,"x-vendor":{"k":"v"}}`},
	}
	for _, tc := range changed {
		t.Run("changed "+tc.name, func(t *testing.T) {
			var def atomic.Value
			def.Store(pinnedTool)
			e := newMCPEnv(t, mcpPolicy(mcpBase+"  pinning: deny\n"), testenv.MCPServerConfig{}, testenv.MCPStateless)
			s := startHostileMCP(t, e.upCA, false, toolServer(&def))
			r := hostileRaw(t, e, s)
			if !listed(t, r, `1`) || !called(t, r, `2`) {
				t.Fatal("the tool, first seen, is not listed and callable")
			}
			// Equal definitions, spelled otherwise, are the same tool.
			for i, sm := range same {
				def.Store(sm.def)
				if !listed(t, r, fmt.Sprintf(`"same-%d"`, i)) || !called(t, r, fmt.Sprintf(`"call-%d"`, i)) {
					t.Fatalf("%s: the same definition, spelled otherwise, read as a change", sm.name)
				}
			}
			def.Store(tc.def)
			if listed(t, r, `3`) {
				t.Errorf("a definition whose %s changed is still listed under pinning: deny", tc.name)
			}
			if called(t, r, `4`) {
				t.Errorf("a call to a tool whose %s changed ran under pinning: deny", tc.name)
			}
			waitEventWhere(t, e.env, "saying the weather tool changed", func(ev event) bool {
				return ev.str("tool") == "weather" && ev.str("rule") == "mcp:pinning" && ev.str("pin") == "changed"
			})
		})
	}
}

// toolHashV1 is the hash an agentg before issue 14 pinned tools by (six
// members of the definition, RFC 8785), written out here from its
// documented format to make the pins file such an agentg left behind.
func toolHashV1(t *testing.T, def string) string {
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(def), &members); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("agentg tool v1\n{")
	first := true
	for _, n := range []string{"annotations", "description", "inputSchema", "name", "outputSchema", "title"} {
		raw, ok := members[n]
		if !ok {
			continue
		}
		v := jsontext.Value(bytes.Clone(raw))
		if err := v.Canonicalize(jsontext.CanonicalizeRawInts(false)); err != nil {
			t.Fatal(err)
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", n, v)
	}
	b.WriteByte('}')
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}

// Pins an older agentg wrote (version 1 hashes) are migrated on first
// sight of the definition they pinned, not all flipped to "changed": the
// tool stays listed and callable under pinning: deny, an event says it
// was re-pinned, the pins file holds the new hash, and a later change of
// what version 1 did not hash (_meta) is then seen.
func TestMCPPinMigratesVersion1(t *testing.T) {
	dir := t.TempDir()
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	var def atomic.Value
	def.Store(pinnedTool)
	s := startHostileMCP(t, upCA, false, toolServer(&def))
	dataDir := filepath.Join(dir, "agentg", "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := toolHashV1(t, pinnedTool)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	pins := fmt.Sprintf(`{"version":1,"pins":[{"server":"srv","tool":"weather","sha256":%q,"accepted":true,"first_seen":%q,"last_seen":%q}]}`, old, now, now)
	if err := os.WriteFile(filepath.Join(dataDir, "mcp-pins.json"), []byte(pins), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: filepath.Join(dir, "agentg"),
		Policy: mcpPolicy(mcpBase + "  pinning: deny\n"), Args: []string{"--upstream-ca", caFile, "--shutdown-timeout", "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.NewMCPRaw(testenv.MCPHTTPClient(testenv.MCPClientConfig{Proxy: a.URL(), Roots: pool}), testenv.MCPStateless, s.URL, "2025-06-18")
	t.Cleanup(r.Close)
	if err := r.Open(mcpCtx(t)); err != nil {
		t.Fatal(err)
	}
	if !listed(t, r, `1`) || !called(t, r, `2`) {
		t.Fatal("a tool pinned by an older agentg, unchanged, is not listed and callable: its pin read as changed")
	}
	logged := func(ok func(map[string]any) bool) bool {
		lines, _ := testenv.ReadLog(a.LogFile)
		for _, l := range lines {
			if ok(l) {
				return true
			}
		}
		return false
	}
	waitFor(t, func() bool {
		return logged(func(l map[string]any) bool { return l["rule"] == "mcp:pin-migrated" && l["tool"] == "weather" })
	}, "an event saying the version 1 pin was migrated")
	if logged(func(l map[string]any) bool { return l["tool"] == "weather" && l["pin"] == "changed" }) {
		t.Fatal("the migrated pin was reported as changed")
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "mcp-pins.json"))
	if err != nil || strings.Contains(string(b), old) {
		t.Fatalf("the pins file still holds the version 1 hash (%v): %s", err, b)
	}
	// Under version 2, a change of _meta alone is a change.
	def.Store(strings.Replace(pinnedTool, "ui://weather/view", "ui://weather/exfiltrate", 1))
	if listed(t, r, `3`) || called(t, r, `4`) {
		t.Fatal("after migration, a changed _meta is not a changed tool")
	}
}
