package test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/gateway/auth"
	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17, the registry: the real binary lists every configured MCP
// server with its state (not served by the gateway until one is wired;
// the credential binding the proxy attaches; tools and changed pins from
// real traffic through the proxy with the Go SDK) beside the inventory,
// through the admin API, `agentg mcp servers` and the console. The policy
// also carries a gateway section: the real binary loads it. Neither the
// gateway token nor the upstream secret appears anywhere agentg writes.
const registrySecret = "reg-7f3a9c01-UPSTREAM"

func TestMCPRegistry(t *testing.T) {
	tok, digest, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	extra := `credentials:
  secrets:
    srv-token: {command: [printf, "%s", "` + registrySecret + `"]}
  bindings:
    - {id: srv-bearer, host: mcp.test, secret: srv-token, header: {name: Authorization, value: "Bearer {{secret}}"}}
gateway:
  tokens:
    - {agent: coder, sha256: ` + digest + `, id: coder-laptop}
`
	e := startMCPAdmin(t, extra)

	// Real traffic: the tools listed, then a changed definition (a rug
	// pull) listed again.
	changed, opts := changedHandler()
	via := e.via
	via.Options = opts
	cl, err := testenv.ConnectMCP(mcpCtx(t), e.server.Mode, e.server.URL, via)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	listAll(t, cl)
	rugPull(t, e.server, cl, changed)

	var reg admin.Registry
	waitFor(t, func() bool {
		code, out := runAgentg(t, "mcp", "servers", "--json", "--data-dir", e.DataDir)
		if code != 0 {
			t.Fatalf("agentg mcp servers --json: %d %s", code, out)
		}
		if err := json.Unmarshal([]byte(out), &reg); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		return len(reg.Items) == 2 && reg.Items[0].PinsChanged == 1
	}, "the registry to show srv's changed pin")
	srv, peer := reg.Items[0], reg.Items[1]
	if srv.Name != "srv" || srv.URL != "mcp.test/mcp/**" || srv.State != admin.StateNotServed || srv.Gateway != nil ||
		srv.Auth != "binding srv-bearer (secret srv-token)" || srv.Tools < 5 || srv.LastSeen.IsZero() || !strings.Contains(srv.Source, "policy.yaml:") {
		t.Errorf("srv: %+v", srv)
	}
	if peer.Name != "peer" || peer.State != admin.StateNotServed || peer.Tools != 0 || !peer.LastSeen.IsZero() || peer.Auth != "none" {
		t.Errorf("peer: %+v", peer)
	}
	if len(reg.Inventory.Servers) != 1 || reg.Inventory.Servers[0].Name != "srv" {
		t.Errorf("inventory beside: %+v", reg.Inventory.Servers)
	}

	code, out := runAgentg(t, "mcp", "servers", "--data-dir", e.DataDir)
	if code != 0 {
		t.Fatalf("agentg mcp servers: %d %s", code, out)
	}
	for _, want := range []string{"SERVER", "srv", "mcp.test/mcp/**", "not served by the gateway", "binding srv-bearer (secret srv-token)",
		"peer", "seen through the proxy: 1 server(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("agentg mcp servers lacks %q:\n%s", want, out)
		}
	}
	// Without a running agentg there is no registry: a clear error.
	if code, out := runAgentg(t, "mcp", "servers", "--admin", "off", "--data-dir", e.DataDir); code != 1 || !strings.Contains(out, "no running agentg") {
		t.Errorf("--admin off: %d %q", code, out)
	}

	// The console's Servers view.
	b := startBrowser(t)
	b.signIn(t, e.AdminAddr, e.token)
	b.do(t, "open the servers view", chromedp.Click(chromedp.CSS(`#nav a[data-view="servers"]`)))
	b.waitJS(t, "srv with its changed pin", `(() => {
		const r = document.querySelector('#servers-table tr[data-server="srv"]');
		return !!r && r.dataset.state === 'not served by the gateway' && r.querySelector('.pins').textContent.startsWith('1')
			&& r.querySelector('.auth').textContent.includes('srv-bearer') && Number(r.querySelector('.tools').textContent) >= 5 })()`)
	b.waitJS(t, "peer, never seen", `(() => { const r = document.querySelector('#servers-table tr[data-server="peer"]'); return !!r && r.textContent.includes('never') })()`)
	b.waitJS(t, "the inventory beside", `!!document.querySelector('#servers-seen li[data-seen="srv"]')`)
	if w := evalJS[float64](t, b, `document.querySelector('#servers').getBoundingClientRect().right - window.innerWidth`); w > 1 {
		t.Errorf("the servers view is %vpx wider than the window", w)
	}

	// The token's value is nowhere in what agentg wrote.
	logb, _ := os.ReadFile(e.LogFile)
	for name, s := range map[string]string{"event log": string(logb), "stderr": e.Stderr(), "registry": fmt.Sprint(reg), "cli": out} {
		if strings.Contains(s, tok) || strings.Contains(s, registrySecret) {
			t.Errorf("a secret value appears in the %s", name)
		}
	}
}
