package test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/proxy"
)

// Issue 14, item 5: an MCP server a servers entry names, reached by its
// address instead (a CONNECT to the IP literal, no SNI), was an opaque
// tunnel: the denied tool ran. An address of a governed name is the
// governed server: its tunnels are intercepted and its calls decided
// under the server's name, or refused when agentg cannot intercept. The
// server is the official Go SDK's on its own loopback address, with a
// certificate for its name and its address; its address is the name's
// by the resolve table (mcp.test) or by DNS (mcpdns.test, a DNS server on
// loopback).

func ipLiteralPolicy(server string) string {
	return `
default: deny
ips:
  - allow: 127.0.0.0/8
hosts:
  - allow: [mcp.test, mcpdns.test]
resolve:
  mcp.test: [127.0.0.7]
mcp:
  default: allow
  unknown_servers: allow
  servers:
    - name: srv
      url: "` + server + `/**"
  tools:
    - deny: "srv.delete_project"
      id: no-delete
`
}

func TestMCPServerByAddress(t *testing.T) {
	upCA, err := testenv.NewCA("mcp upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	dnsUp, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{Records: []string{"mcpdns.test. 60 IN A 127.0.0.8"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dnsUp.Close)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsUp.Addr)
	}}
	for _, tc := range []struct {
		name, server, ip string
		spellings        []string // how the client writes the address
	}{
		{"resolve table", "mcp.test", "127.0.0.7", []string{"127.0.0.7", "0x7f.0.0.7", "2130706439", "127.0.7"}},
		{"dns", "mcpdns.test", "127.0.0.8", []string{"127.0.0.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", tc.ip+":0")
			if err != nil {
				t.Skipf("cannot listen on %s: %v", tc.ip, err)
			}
			s := startMCPPeer(t, testenv.MCPServerConfig{Mode: testenv.MCPStatelessJSON, CA: upCA,
				Hosts: []string{tc.ip, tc.server}, Listener: ln})
			e := &mcpEnv{env: startProxyOpts(t, ipLiteralPolicy(tc.server), nil, &tlsOpts{roots: upCA.Pool()},
				func(c *proxy.Config) { c.Resolver = resolver }), upCA: upCA}
			// Directly, the server runs the tool: the case is real.
			direct := testenv.MCPClientConfig{Direct: s.Addr, Roots: upCA.Pool(), Revision: "2025-06-18"}
			cl, err := testenv.ConnectMCP(mcpCtx(t), s.Mode, "https://"+tc.ip+":"+s.Port+"/mcp", direct)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := callTool(t, cl, testenv.MCPToolDelete, nil); err != nil || s.Calls(testenv.MCPToolDelete) != 1 {
				t.Fatalf("directly: %v, delete ran %d times", err, s.Calls(testenv.MCPToolDelete))
			}
			cl.Close()
			// The agent trusts agentg and the server's own CA alike: an
			// opaque tunnel would reach the server, and the tool run.
			via := e.via("", "")
			via.Roots = e.caPool()
			via.Roots.AddCert(upCA.Cert)
			for i, sp := range tc.spellings {
				url := "https://" + sp + ":" + s.Port + "/mcp"
				if sp == tc.ip {
					// The SDK client, as an agent would write the URL.
					cfg := via
					cfg.Revision = "2025-06-18"
					cl, err := testenv.ConnectMCP(mcpCtx(t), s.Mode, url, cfg)
					if err != nil {
						t.Fatalf("%s through agentg: %v", url, err)
					}
					res, err := callTool(t, cl, testenv.MCPToolDelete, nil)
					wantDenied(t, res, err, "no-delete")
					// The marker: an allowed call the same server counts.
					args := map[string]any{"n": i}
					res, err = callTool(t, cl, testenv.MCPToolEcho, args)
					wantEcho(t, res, err, args)
					cl.Close()
				} else {
					// Other spellings of the address, raw: the CONNECT
					// names it so, TLS has no SNI and verifies the address.
					hc := testenv.MCPHTTPClient(via)
					hc.Transport.(*http.Transport).TLSClientConfig.ServerName = tc.ip
					t.Cleanup(hc.CloseIdleConnections)
					raw := testenv.NewMCPRaw(hc, s.Mode, url, "2025-06-18")
					if err := raw.Open(mcpCtx(t)); err != nil {
						t.Fatalf("%s: %v", url, err)
					}
					rep, err := raw.Call(mcpCtx(t), "1", "tools/call", map[string]any{"name": testenv.MCPToolDelete, "arguments": map[string]any{}})
					if err != nil || !strings.Contains(string(rep.ByID("1")), "no-delete") {
						t.Fatalf("%s: delete_project: %v %s, want denied by no-delete", url, err, rep.Body)
					}
					rep, err = raw.Call(mcpCtx(t), "2", "tools/call", map[string]any{"name": testenv.MCPToolEcho, "arguments": map[string]any{"n": i}})
					if err != nil || !strings.Contains(string(rep.ByID("2")), `"result"`) {
						t.Fatalf("%s: echo: %v %s", url, err, rep.Body)
					}
				}
				if s.Calls(testenv.MCPToolEcho) != int64(i+1) {
					t.Fatalf("%s: the marker call did not reach the server", url)
				}
				if n := s.Calls(testenv.MCPToolDelete); n != 1 {
					t.Fatalf("%s through agentg: the denied tool ran (%d runs in all, 1 direct)", url, n)
				}
				ev := waitMCPEvent(t, e.env, map[string]any{"rule": "no-delete", "decision": "deny"})
				if ev.str("server") != "srv" {
					t.Errorf("the denial's event %v: want server srv", ev)
				}
			}
		})
	}

	// Without a CA the server's address cannot be intercepted: the
	// tunnel is refused, not opened blind.
	t.Run("no CA", func(t *testing.T) {
		e := startProxy(t, ipLiteralPolicy("mcp.test"), nil)
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "CONNECT 127.0.0.7:443 HTTP/1.1\r\nHost: 127.0.0.7:443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "mcp:server srv") {
			t.Fatalf("CONNECT to a governed server's address without a CA: %d %s", resp.StatusCode, b)
		}
	})
}

// The same on plain http://, absolute-form on the explicit listener: a
// request to the governed server's address is decided as the server's
// (the TypeScript SDK peer is mcp.test's by resolve:).
func TestMCPServerByAddressPlainHTTP(t *testing.T) {
	p := startIntakePeer(t)
	// unknown_servers: allow, so that an address taken for an unnamed
	// server would be let through rather than refused outright.
	e := startProxy(t, strings.Replace(intakePolicy, "unknown_servers: deny", "unknown_servers: allow", 1), nil)
	hc := e.client("", "", nil)
	del, echo := []byte(callBody("tools/call", "delete")), []byte(callBody("tools/call", "echo"))
	json := []string{"application/json"}
	before := p.count(t)
	if st, b := intakePost(t, &http.Client{}, "http://"+p.Addr+"/mcp", json, del); st != 200 || p.count(t).Delete != before.Delete+1 {
		t.Fatalf("directly: %d %s", st, b)
	}
	for _, host := range []string{"127.0.0.1", "127.1", "2130706433"} {
		before := p.count(t)
		st, b := intakePost(t, hc, "http://"+host+":"+p.port+"/mcp", json, del)
		if st, b := intakePost(t, hc, "http://"+host+":"+p.port+"/mcp", json, echo); st != 200 || !strings.Contains(b, "echo ran") {
			t.Fatalf("%s: the marker call: %d %s", host, st, b)
		}
		after := p.count(t)
		if after.Echo != before.Echo+1 {
			t.Fatalf("%s: the marker did not reach the peer", host)
		}
		if after.Delete != before.Delete || !strings.Contains(b, "no-delete") {
			t.Fatalf("%s: the denied tool ran through agentg (%d %s)", host, st, b)
		}
	}
}
