//go:build linux

package test

// Issue 9: transparent mode end to end. A real topology (netns_linux_test.go),
// the real agentg binary in the router namespace, the rules `agentg
// netsetup --apply` installed there, and clients in the agent namespace
// that know of no proxy.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

const transparentPort = "15001"

// transparentEnv is a topology with upstreams in the upstream namespace.
type transparentEnv struct {
	*topo
	fw      firewall
	upCA    *testenv.CA
	caFile  string
	dir     string
	mcpSrv  *testenv.MCPServer
	rawHits atomic.Int64 // connections the raw upstreams accepted

	policyOverride string // when set, the policy agentg starts with instead of policy()
}

func newTransparentEnv(t *testing.T, fw func(*testing.T) firewall) *transparentEnv {
	needNetns(t)
	f := fw(t)
	tp := newTopo(t)
	e := &transparentEnv{topo: tp, fw: f, dir: t.TempDir()}
	var err error
	if e.upCA, err = testenv.NewCA("transparent upstream root"); err != nil {
		t.Fatal(err)
	}
	e.caFile = filepath.Join(e.dir, "up-ca.pem")
	if err := e.upCA.WriteCert(e.caFile); err != nil {
		t.Fatal(err)
	}
	cert, err := e.upCA.Leaf([]string{"allowed.test", "mcp.test", "bound.test"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 3, 5} {
		ip := tp.upIP(i).String()
		for _, o := range []testenv.UpstreamOptions{
			{Listener: tp.listen(tp.up, "tcp", ip+":80")},
			{Listener: tp.listen(tp.up, "tcp", ip+":443"), Cert: &cert},
		} {
			o.Quiet = true
			u := testenv.StartUpstream(o)
			t.Cleanup(u.Close)
		}
		for _, port := range []string{"7000", "7001"} {
			e.serveRaw(tp.listen(tp.up, "tcp", ip+":"+port), port == "7001")
		}
	}
	for _, i := range []int{2, 3} {
		ip := "[" + tp.upIP6(i).String() + "]"
		for _, o := range []testenv.UpstreamOptions{
			{Listener: tp.listen(tp.up, "tcp", ip+":80")},
			{Listener: tp.listen(tp.up, "tcp", ip+":443"), Cert: &cert},
		} {
			o.Quiet = true
			u := testenv.StartUpstream(o)
			t.Cleanup(u.Close)
		}
	}
	e.serveRaw(tp.listen(tp.up, "tcp", tp.upIP(4).String()+":7000"), false)
	e.serveRaw(tp.listen(tp.up, "tcp", tp.upIP(4).String()+":7001"), true)
	e.mcpSrv, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStatefulJSON, CA: e.upCA,
		Listener: tp.listen(tp.up, "tcp", tp.upIP(2).String()+":8443")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.mcpSrv.Close)
	return e
}

// serveRaw runs a line echo (serverFirst: that first sends a banner).
func (e *transparentEnv) serveRaw(ln net.Listener, serverFirst bool) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.rawHits.Add(1)
			go func() {
				defer c.Close()
				if serverFirst {
					io.WriteString(c, "220 hello from the server\n")
				}
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, "echo "+line)
				}
			}()
		}
	}()
}

func (e *transparentEnv) policy() string {
	if e.policyOverride != "" {
		return e.policyOverride
	}
	return fmt.Sprintf(`
default: deny
hosts:
  - allow: [allowed.test, mcp.test]
ips:
  - allow: [%s, %s/126]
resolve:
  allowed.test: [%s, %s]
  mcp.test: [%s]
  denied.test: [%s, %s]
intercept: [mcp.test]
mcp:
  default: allow
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
  tools:
    - deny: "srv.delete_*"
      id: no-delete
`, e.upIP(4), e.upIP6(0), e.upIP(2), e.upIP6(2), e.upIP(2), e.upIP(2), e.upIP6(2))
}

// startAgentg runs agentg serve in the router namespace.
func (e *transparentEnv) startAgentg(extra ...string) (*testenv.Agentg, error) {
	wrapper := filepath.Join(e.dir, "agentg-in-router")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", e.router, agentgBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"--transparent", "0.0.0.0:" + transparentPort, "--upstream-ca", e.caFile}, extra...)
	return testenv.StartAgentg(testenv.AgentgConfig{Binary: wrapper, Dir: filepath.Join(e.dir, "agentg"),
		Policy: e.policy(), Listen: e.routerIP.String() + ":3128", Args: args})
}

func (e *transparentEnv) mustStart(extra ...string) *testenv.Agentg {
	e.t.Helper()
	a, err := e.startAgentg(extra...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(a.Kill)
	return a
}

// netsetup runs agentg netsetup in the router namespace, with the PATH
// of the test's firewall.
func (e *transparentEnv) netsetup(args ...string) string {
	e.t.Helper()
	return e.exec(e.router, e.netsetupCmd(args...)...)
}

func (e *transparentEnv) netsetupCmd(args ...string) []string {
	cmd := append([]string{agentgBin, "netsetup"}, args...)
	if e.fw.path != "" {
		cmd = append([]string{"env", "PATH=" + e.fw.path}, cmd...)
	}
	return cmd
}

// curl runs curl in the agent namespace, with proxy variables set that it
// is told to ignore, and returns its output and exit code.
func (e *transparentEnv) curl(args ...string) (string, int) {
	e.t.Helper()
	cmd := []string{"env", "HTTP_PROXY=http://" + e.routerIP.String() + ":3128", "HTTPS_PROXY=http://" + e.routerIP.String() + ":3128",
		"curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", e.caFile}
	out, err := e.try(e.agent, append(cmd, args...)...)
	if err == nil {
		return out, 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return out, ee.ExitCode()
	}
	e.t.Fatal(err)
	return "", -1
}

// events are agentg's decision events from the transparent door.
func transparentEvents(t *testing.T, a *testenv.Agentg) []event {
	t.Helper()
	lines, err := testenv.ReadLog(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []event
	for _, l := range lines {
		if l["door"] == "transparent" {
			out = append(out, event(l))
		}
	}
	return out
}

// awaitEvent waits for an event of the transparent door that match accepts.
func awaitEvent(t *testing.T, a *testenv.Agentg, what string, match func(event) bool) event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := a.WaitEvent(ctx, func(m map[string]any) bool { return m["door"] == "transparent" && match(event(m)) })
	if err != nil {
		t.Fatalf("no transparent event %s: %v; have %v", what, err, transparentEvents(t, a))
	}
	return event(ev)
}

func TestTransparent(t *testing.T) { testTransparent(t, nftFirewall) }

// The same with iptables where nft is missing.
func TestTransparentIptables(t *testing.T) { testTransparent(t, iptablesFirewall) }

func testTransparent(t *testing.T, fw func(*testing.T) firewall) {
	e := newTransparentEnv(t, fw)
	up2, up3, up4 := e.upIP(2).String(), e.upIP(3).String(), e.upIP(4).String()

	// Before any rule: the router forwards UDP 443 (so that dropping it
	// below is the rules' doing), and TCP goes straight through.
	udp := e.listenUDP(e.up, up2+":443")
	if !udpArrives(t, e, up2+":443", udp) {
		t.Fatal("before netsetup, UDP 443 from the agent does not reach the upstream: the topology is broken")
	}

	a := e.mustStart()
	printed := e.netsetup("--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--dns", e.routerIP.String()+":5353")
	if !strings.Contains(printed, e.fw.iface(e.routerAIf)) {
		t.Fatalf("netsetup --netns %s did not find the namespace's interface %s:\n%s", e.agent, e.routerAIf, printed)
	}
	e.netsetup("--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--dns", e.routerIP.String()+":5353", "--apply")
	rules := e.fw.installed(e.topo, e.router)
	if !strings.Contains(rules, "udp dport 53") && !strings.Contains(rules, "th dport 53") && !strings.Contains(rules, "--dport 53") {
		t.Errorf("no DNS redirect in the installed rules:\n%s", rules)
	}

	t.Run("HTTP", func(t *testing.T) {
		out, code := e.curl("-i", "--resolve", "allowed.test:80:"+up2, "http://allowed.test/hello")
		if code != 0 || !strings.Contains(out, "200 OK") || !strings.Contains(out, "GET /hello host=allowed.test") {
			t.Fatalf("allowed HTTP through the redirect: exit %d\n%s", code, out)
		}
		ev := awaitEvent(t, a, "for GET /hello", func(ev event) bool { return ev.str("path") == "/hello" })
		if ev.str("decision") != "allow" || ev.str("original_dst") != up2+":80" || ev.str("host") != "allowed.test" || ev.str("parent") == "" {
			t.Errorf("event %v", ev)
		}
		out, code = e.curl("-i", "--resolve", "denied.test:80:"+up2, "http://denied.test/")
		if code != 0 || !strings.Contains(out, "403") || !strings.Contains(out, "X-Agentg-Rule: default") {
			t.Fatalf("denied host over HTTP: exit %d\n%s", code, out)
		}
		// A Host the address does not serve, by the policy's own table.
		out, _ = e.curl("-i", "--resolve", "allowed.test:80:"+up3, "http://allowed.test/elsewhere")
		if !strings.Contains(out, "403") || !strings.Contains(out, "builtin:dst-mismatch") {
			t.Fatalf("Host/IP mismatch over HTTP was not refused:\n%s", out)
		}
	})

	t.Run("HTTPS", func(t *testing.T) {
		out, code := e.curl("--resolve", "allowed.test:443:"+up2, "https://allowed.test/tls")
		if code != 0 || !strings.Contains(out, "GET /tls host=allowed.test") {
			t.Fatalf("allowed HTTPS through the redirect: exit %d\n%s", code, out)
		}
		ev := awaitEvent(t, a, "for the TLS tunnel", func(ev event) bool {
			return ev.str("kind") == "connect" && ev.str("host") == "allowed.test" && ev.num("port") == 443 && ev.str("decision") == "allow"
		})
		if ev.str("original_dst") != up2+":443" || ev.str("ip") != up2 {
			t.Errorf("tunnel event %v", ev)
		}
	})

	t.Run("DeniedSNI", func(t *testing.T) {
		out, code := e.curl("--resolve", "denied.test:443:"+up2, "https://denied.test/")
		if code == 0 {
			t.Fatalf("a denied SNI got through:\n%s", out)
		}
		awaitEvent(t, a, "denying denied.test", func(ev event) bool {
			return ev.str("host") == "denied.test" && ev.str("decision") == "deny" && ev.str("rule") == "default"
		})
	})

	t.Run("SNIMismatch", func(t *testing.T) {
		// An allowed SNI sent to an address the name does not have.
		out, code := e.curl("--resolve", "allowed.test:443:"+up3, "https://allowed.test/")
		if code == 0 {
			t.Fatalf("allowed.test sent to %s got through:\n%s", up3, out)
		}
		awaitEvent(t, a, "refusing the mismatch", func(ev event) bool {
			return ev.str("host") == "allowed.test" && ev.str("rule") == "builtin:dst-mismatch" && ev.str("original_dst") == up3+":443"
		})
	})

	t.Run("MCP", func(t *testing.T) {
		pool, err := a.CAPool()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := testenv.ConnectMCP(ctx, testenv.MCPStatefulJSON, "https://mcp.test:8443/mcp", testenv.MCPClientConfig{
			Dial: e.dialer(e.agent, map[string]netip.Addr{"mcp.test": e.upIP(2)}), Roots: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolEcho, Arguments: map[string]any{"x": 1}})
		if err != nil || res.IsError {
			t.Fatalf("allowed tool: %v %+v", err, res)
		}
		res, err = c.CallTool(ctx, &mcp.CallToolParams{Name: testenv.MCPToolDelete, Arguments: map[string]any{"project": "p"}})
		if err == nil && !res.IsError {
			t.Fatalf("denied tool was called: %+v", res)
		}
		if n := e.mcpSrv.Calls(testenv.MCPToolDelete); n != 0 {
			t.Fatalf("the server ran the denied tool %d times", n)
		}
		// The guard's events name the exchange they belong to, which is
		// the transparent door's, and carry the door and the original
		// destination themselves.
		ex := map[string]bool{}
		awaitEvent(t, a, "intercepted request", func(ev event) bool {
			if ev.str("kind") == "http" && ev.str("tls") == "intercepted" && ev.str("host") == "mcp.test" {
				ex[ev.str("id")] = true
			}
			return len(ex) > 0
		})
		deadline := time.Now().Add(10 * time.Second)
		for {
			lines, _ := testenv.ReadLog(a.LogFile)
			found := false
			for _, l := range lines {
				ev := event(l)
				if ev.str("kind") == "mcp" && ev.str("tool") == testenv.MCPToolDelete && ev.str("decision") == "deny" &&
					ev.str("rule") == "no-delete" && ex[ev.str("parent")] {
					if ev.str("door") != "transparent" || ev.str("original_dst") != up2+":8443" {
						t.Fatalf("the mcp event of a transparent exchange does not say so: %v", ev)
					}
					found = true
				}
				if ev.str("kind") == "http" && ev.str("door") == "transparent" && ev.str("tls") == "intercepted" {
					ex[ev.str("id")] = true
				}
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no mcp event denying %s inside a transparent exchange", testenv.MCPToolDelete)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("IPv6", func(t *testing.T) {
		v6 := func(i int) string { return "[" + e.upIP6(i).String() + "]" }
		out, code := e.curl("-i", "--resolve", "allowed.test:80:"+v6(2), "http://allowed.test/hello6")
		if code != 0 || !strings.Contains(out, "200 OK") || !strings.Contains(out, "GET /hello6 host=allowed.test") {
			t.Fatalf("allowed HTTP over IPv6 through the redirect: exit %d\n%s", code, out)
		}
		ev := awaitEvent(t, a, "for GET /hello6", func(ev event) bool { return ev.str("path") == "/hello6" })
		if ev.str("decision") != "allow" || ev.str("original_dst") != v6(2)+":80" || ev.str("client") == "" ||
			!strings.HasPrefix(ev.str("client"), "["+e.agentIP6.String()+"]:") {
			t.Errorf("event %v", ev)
		}
		out, _ = e.curl("-i", "--resolve", "allowed.test:80:"+v6(3), "http://allowed.test/elsewhere6")
		if !strings.Contains(out, "403") || !strings.Contains(out, "builtin:dst-mismatch") {
			t.Fatalf("Host/IP mismatch over IPv6 was not refused:\n%s", out)
		}

		out, code = e.curl("--resolve", "allowed.test:443:"+v6(2), "https://allowed.test/tls6")
		if code != 0 || !strings.Contains(out, "GET /tls6 host=allowed.test") {
			t.Fatalf("allowed HTTPS over IPv6 through the redirect: exit %d\n%s", code, out)
		}
		ev = awaitEvent(t, a, "for the IPv6 TLS tunnel", func(ev event) bool {
			return ev.str("kind") == "connect" && ev.str("original_dst") == v6(2)+":443" && ev.str("decision") == "allow"
		})
		if ev.str("host") != "allowed.test" || ev.str("ip") != e.upIP6(2).String() {
			t.Errorf("tunnel event %v", ev)
		}
		if out, code := e.curl("--resolve", "allowed.test:443:"+v6(3), "https://allowed.test/"); code == 0 {
			t.Fatalf("allowed.test sent to %s got through:\n%s", v6(3), out)
		}
		awaitEvent(t, a, "refusing the IPv6 mismatch", func(ev event) bool {
			return ev.str("rule") == "builtin:dst-mismatch" && ev.str("original_dst") == v6(3)+":443"
		})
		if out, code := e.curl("--resolve", "denied.test:443:"+v6(2), "https://denied.test/"); code == 0 {
			t.Fatalf("a denied SNI got through over IPv6:\n%s", out)
		}
		awaitEvent(t, a, "denying denied.test over IPv6", func(ev event) bool {
			return ev.str("host") == "denied.test" && ev.str("rule") == "default" && ev.str("original_dst") == v6(2)+":443"
		})
	})

	t.Run("RawTCP", func(t *testing.T) {
		dial := e.dialer(e.agent, nil)
		// Opened by a CIDR rule: passes, client first and server first.
		if got := rawExchange(t, dial, up4+":7000", false); got != "echo ping\n" {
			t.Fatalf("raw TCP to a CIDR-opened address: %q", got)
		}
		if got := rawExchange(t, dial, up4+":7001", true); got != "220 hello from the server\necho ping\n" {
			t.Fatalf("server-first raw TCP to a CIDR-opened address: %q", got)
		}
		before := e.rawHits.Load()
		if got := rawExchange(t, dial, up3+":7000", false); got != "" {
			t.Fatalf("raw TCP to an address nothing opens got %q", got)
		}
		if e.rawHits.Load() != before {
			t.Fatal("the upstream nothing opens was connected to")
		}
		awaitEvent(t, a, "closing raw TCP", func(ev event) bool {
			return ev.str("rule") == "builtin:transparent-raw" && ev.str("original_dst") == up3+":7000"
		})
		// Issue 14, item 21: a passed raw tunnel has its open event,
		// naming it, and the refused one none.
		for _, port := range []string{"7000", "7001"} {
			closed := awaitEvent(t, a, "closing raw TCP "+port, func(ev event) bool {
				return ev.str("kind") == "connect" && ev.str("original_dst") == up4+":"+port && ev.str("decision") == "allow"
			})
			awaitEvent(t, a, "opening raw TCP "+port, func(ev event) bool {
				return ev.str("kind") == "tunnel-open" && ev.str("original_dst") == up4+":"+port &&
					ev.str("parent") == closed.str("id") && closed.str("opened") == ev.str("id")
			})
		}
		for _, ev := range transparentEvents(t, a) {
			if ev.str("kind") == "tunnel-open" && ev.str("original_dst") == up3+":7000" {
				t.Errorf("a refused raw connection has an open event: %v", ev)
			}
		}
	})

	t.Run("UDP443Dropped", func(t *testing.T) {
		if udpArrives(t, e, up2+":443", udp) {
			t.Fatal("UDP 443 reached the upstream through the rules")
		}
		// To the gateway itself too.
		gw := e.listenUDP(e.router, e.routerIP.String()+":443")
		if udpArrives(t, e, e.routerIP.String()+":443", gw) {
			t.Fatal("UDP 443 to the gateway got through")
		}
	})

	t.Run("Remove", func(t *testing.T) {
		e.netsetup("--remove")
		if rs := e.fw.leftover(e.topo, e.router); rs != "" {
			t.Fatalf("rules left after --remove:\n%s", rs)
		}
		if !udpArrives(t, e, up2+":443", udp) {
			t.Fatal("after --remove, UDP 443 is still dropped")
		}
		if out := e.netsetup("--remove"); !strings.Contains(out, "no agentg ") {
			t.Fatalf("a second --remove: %q", out)
		}
	})
}

// rawExchange connects, reads a banner when serverFirst, sends "ping" and
// returns all it read before the connection ended or went quiet.
func rawExchange(t *testing.T, dial func(context.Context, string, string) (net.Conn, error), address string, serverFirst bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp", address)
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var got strings.Builder
	if serverFirst {
		line, err := br.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			return got.String()
		}
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return got.String()
	}
	line, _ := br.ReadString('\n')
	got.WriteString(line)
	return got.String()
}

// udpArrives sends a datagram from the agent namespace to address and
// reports whether pc received it.
func udpArrives(t *testing.T, e *transparentEnv, address string, pc *net.UDPConn) bool {
	t.Helper()
	var c net.Conn
	if err := inNetns(e.agent, func() (err error) {
		c, err = net.Dial("udp", address)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	token := fmt.Sprintf("quic-%d", time.Now().UnixNano())
	buf := make([]byte, 256)
	for range 3 {
		c.Write([]byte(token))
		pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == token {
				return true
			}
		}
	}
	return false
}

// No loop: with rules that redirect every TCP connection of root in the
// router namespace (agentg's own uid) to agentg, agentg's marked
// connections still reach the upstream; unmarked, agentg refuses to start.
func TestTransparentNoLoop(t *testing.T) { testTransparentNoLoop(t, nftFirewall) }

func TestTransparentNoLoopIptables(t *testing.T) { testTransparentNoLoop(t, iptablesFirewall) }

func testTransparentNoLoop(t *testing.T, fw func(*testing.T) firewall) {
	e := newTransparentEnv(t, fw)
	e.netsetup("--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--apply")
	e.netsetup("--uid", "0", "--table", "agentg-own", "--transparent", "0.0.0.0:"+transparentPort, "--apply")
	t.Cleanup(func() { e.try(e.router, e.netsetupCmd("--remove", "--table", "agentg-own")...) })

	if _, err := e.startAgentg("--mark", "0"); err == nil || !strings.Contains(err.Error(), "redirected to its transparent listener") {
		t.Fatalf("agentg without a mark started under rules that redirect its own traffic: %v", err)
	}
	os.Remove(filepath.Join(e.dir, "agentg", "agentg.log")) // the refused start's events (its loop among them)
	a := e.mustStart()
	out, code := e.curl("--resolve", "allowed.test:443:"+e.upIP(2).String(), "https://allowed.test/noloop")
	if code != 0 || !strings.Contains(out, "GET /noloop") {
		t.Fatalf("through the redirect with agentg's own traffic marked: exit %d\n%s", code, out)
	}
	for _, ev := range transparentEvents(t, a) {
		if ev.str("rule") == "builtin:loop" {
			t.Fatalf("a loop: %v", ev)
		}
	}
}
