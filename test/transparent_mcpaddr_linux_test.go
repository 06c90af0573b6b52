//go:build linux

package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 5, at the transparent door: an agent that dials a
// governed MCP server's address itself, TLS without SNI, is redirected to
// agentg, which must govern the connection as the server's name (the
// address is mcp.test's by resolve:), not relay it blind. The server is
// the official Go SDK's, with a certificate for its name and its address,
// and the agent trusts the server's CA as well as agentg's: a relayed
// connection would reach it and run the denied tool.
func TestTransparentMCPByAddress(t *testing.T) {
	e := newTransparentEnv(t, nftFirewall)
	up5 := e.upIP(5).String()
	srv, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStatelessJSON, CA: e.upCA,
		Hosts: []string{"mcp.test", up5}, Listener: e.listen(e.up, "tcp", up5+":8443")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e.policyOverride = fmt.Sprintf(`
default: deny
hosts:
  - allow: [mcp.test]
ips:
  - allow: [%s]
resolve:
  mcp.test: [%s]
mcp:
  default: allow
  servers:
    - name: srv
      url: "mcp.test/**"
  tools:
    - deny: "srv.delete_project"
      id: no-delete
`, up5, up5)
	a := e.mustStart()
	e.netsetup("--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--dns", e.routerIP.String()+":5353", "--apply")

	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(e.upCA.Cert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testenv.ConnectMCP(ctx, srv.Mode, "https://"+up5+":8443/mcp", testenv.MCPClientConfig{
		Dial: e.dialer(e.agent, nil), Roots: pool, Revision: "2025-06-18"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolDelete, Arguments: map[string]any{}})
	if err == nil && !res.IsError {
		t.Errorf("the denied tool answered: %+v", res)
	}
	// The marker: an allowed call the same server counts.
	if res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho, Arguments: map[string]any{"x": 1}}); err != nil || res.IsError {
		t.Fatalf("allowed tool: %v %+v", err, res)
	}
	if srv.Calls(testenv.MCPToolEcho) != 1 {
		t.Fatal("the marker call did not reach the server")
	}
	if n := srv.Calls(testenv.MCPToolDelete); n != 0 {
		t.Fatalf("the server ran the denied tool %d times: its address was relayed, not governed", n)
	}
	awaitEvent(t, a, "the denial", func(ev event) bool {
		return ev.str("kind") == "mcp" && ev.str("rule") == "no-delete" && ev.str("server") == "srv" &&
			ev.str("door") == "transparent" && strings.HasPrefix(ev.str("original_dst"), up5+":")
	})
}

// The same for a server under a "*.x" entry, whose names agentg cannot
// list: the agent resolves one through agentg's DNS filter, and the
// address the filter handed out for it is that server's.
func TestTransparentMCPByBoundAddress(t *testing.T) {
	e := newTransparentEnv(t, nftFirewall)
	up2, up5 := e.upIP(2).String(), e.upIP(5).String()
	resolver, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{
		PacketConn: e.listenUDP(e.up, up2+":53"),
		Listener:   e.listen(e.up, "tcp", up2+":53"),
		Records:    []string{"a.mcpwild.test. 60 IN A " + up5},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(resolver.Close)
	srv, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStatelessJSON, CA: e.upCA,
		Hosts: []string{"a.mcpwild.test", up5}, Listener: e.listen(e.up, "tcp", up5+":8443")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	a := e.startWithPolicy(fmt.Sprintf(`
default: deny
hosts:
  - allow: "*.mcpwild.test"
ips:
  - allow: [%s]
dns:
  upstreams: [%s]
mcp:
  default: allow
  servers:
    - name: srv
      url: "*.mcpwild.test/**"
  tools:
    - deny: "srv.delete_project"
      id: no-delete
`, up5, up2), "--dns", "0.0.0.0:5353")
	e.netsetup("--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--dns", e.routerIP.String()+":5353", "--apply")
	t.Cleanup(func() {
		e.try(e.router, agentgBin, "netsetup", "--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--remove")
	})

	dial := e.dialer(e.agent, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The agent resolves the name (the rules take its DNS to the filter).
	c, err := dial(ctx, "udp", up2+":53")
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	co := &dns.Conn{Conn: c}
	q := new(dns.Msg)
	q.SetQuestion("a.mcpwild.test.", dns.TypeA)
	if err := co.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	r, err := co.ReadMsg()
	c.Close()
	if err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), up5) {
		t.Fatalf("the filter's answer: %v %v", r, err)
	}

	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(e.upCA.Cert)
	cl, err := testenv.ConnectMCP(ctx, srv.Mode, "https://"+up5+":8443/mcp", testenv.MCPClientConfig{
		Dial: dial, Roots: pool, Revision: "2025-06-18"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolDelete, Arguments: map[string]any{}})
	if err == nil && !res.IsError {
		t.Errorf("the denied tool answered: %+v", res)
	}
	if res, err := cl.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho, Arguments: map[string]any{"x": 1}}); err != nil || res.IsError {
		t.Fatalf("allowed tool: %v %+v", err, res)
	}
	if srv.Calls(testenv.MCPToolEcho) != 1 {
		t.Fatal("the marker call did not reach the server")
	}
	if n := srv.Calls(testenv.MCPToolDelete); n != 0 {
		t.Fatalf("the server ran the denied tool %d times: its bound address was relayed, not governed", n)
	}
}
