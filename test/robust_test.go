package test

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/proxy"
)

// Issue 11: the Host tracking framer ended heads only at "\r\n\r\n" while
// net/http also ends them at bare LF, so on a pipelined connection it fell
// out of step and a later request's Host went unchecked (or every request
// was refused).
func TestRobustPipelinedBareLF(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	fake := "GET http://allowed.test:" + p + "/ HTTP/1.1\r\nHost: evil.test\r\n\r\n" // a body, not a request
	styles := []struct {
		name, eol, end string // line ending, and the empty line ending a head
	}{
		{"bare LF", "\n", "\n"},
		{"CRLF lines, LF blank line", "\r\n", "\n"},
		{"LF lines, CRLF blank line", "\n", "\r\n"},
	}
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			head := func(lines ...string) string { return strings.Join(lines, st.eol) + st.eol + st.end }
			u := "http://allowed.test:" + p
			reqs := head("POST "+u+"/a HTTP/1.1", "Host: allowed.test:"+p, "Content-Length: "+itoa(len(fake))) + fake +
				head("GET "+u+"/b HTTP/1.1", "Host: allowed.test:"+p) +
				head("GET "+u+"/c HTTP/1.1", "Host: denied.test:"+p, "Connection: close")
			got := pipeline(t, e.addr, reqs, 3)
			if want := []int{200, 200, 421}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
				t.Fatalf("pipelined statuses %v, want %v", got, want)
			}
		})
	}
}

// Issue 11: TunnelIdleTimeout was not enforced, so an idle tunnel held its
// slot and its upstream connection forever; a tunnel that keeps carrying
// bytes must not be cut.
func TestRobustTunnelIdleTimeout(t *testing.T) {
	e := startProxyOpts(t, basePolicy(gatePolicyHosts), nil, nil, func(c *proxy.Config) {
		c.TunnelIdleTimeout = 300 * time.Millisecond
	})

	t.Run("idle", func(t *testing.T) {
		up := newRawUpstream(t, bannerThenEcho)
		c := connectTunnel(t, e, "allowed.test:"+up.port)
		io.WriteString(c, "SSH-2.0-x\r\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "SSH-2.0-upstream\r\n" {
			t.Fatalf("tunnel: %q %v", line, err)
		}
		waitClosed(t, c, "idle tunnel")
		waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String()})
	})

	t.Run("upstream keeps sending", func(t *testing.T) {
		up := newRawUpstream(t, func(c net.Conn) {
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				return
			}
			for {
				if _, err := io.WriteString(c, "."); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
		c := connectTunnel(t, e, "allowed.test:"+up.port)
		io.WriteString(c, "SSH-2.0-x\r\n")
		end := time.Now().Add(2 * time.Second)
		buf := make([]byte, 64)
		n := 0
		for time.Now().Before(end) {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := c.Read(buf)
			if err != nil {
				t.Fatalf("a tunnel carrying a byte every 100ms closed after %d bytes: %v", n, err)
			}
			n += k
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("no more bytes after 2s: %v", err)
		}
	})
}

// openTunnel opens a tunnel to an upstream running bannerThenEcho, as the
// agent whose Proxy-Authorization header line is auth (may be empty), and
// returns it once bytes flow both ways.
func openTunnel(t *testing.T, e *env, target, auth string) net.Conn {
	t.Helper()
	c, br, resp := dialConnect(t, e, target, auth)
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %d", target, resp.StatusCode)
	}
	io.WriteString(c, "SSH-2.0-x\r\n")
	if line, err := br.ReadString('\n'); err != nil || line != "SSH-2.0-upstream\r\n" {
		t.Fatalf("tunnel %s: %q %v", target, line, err)
	}
	return c
}

// Issue 11: MaxTunnels and MaxTunnelsPerAgent were not enforced.
func TestRobustTunnelCaps(t *testing.T) {
	up := newRawUpstream(t, bannerThenEcho)
	target := "allowed.test:" + up.port

	t.Run("total", func(t *testing.T) {
		e := startProxyOpts(t, basePolicy(gatePolicyHosts), nil, nil, func(c *proxy.Config) { c.MaxTunnels = 2 })
		first := openTunnel(t, e, target, "")
		openTunnel(t, e, target, "")
		c, _, resp := dialConnect(t, e, target, "")
		if resp.StatusCode != 503 {
			t.Fatalf("third tunnel: %d, want 503", resp.StatusCode)
		}
		c.Close()
		waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String(), "decision": "deny", "status": 503})

		// A closed tunnel frees its slot.
		first.Close()
		waitFor(t, func() bool {
			c, _, resp := dialConnect(t, e, target, "")
			c.Close()
			return resp.StatusCode == 200
		}, "a slot after closing a tunnel")
	})

	t.Run("per agent", func(t *testing.T) {
		e := startProxyOpts(t, basePolicy(`
agents:
  - name: a
    password: pa
  - name: b
    password: pb
`+gatePolicyHosts), nil, nil, func(c *proxy.Config) { c.MaxTunnelsPerAgent = 1 })
		as := func(user, pass string) string { return "Proxy-Authorization: Basic " + basic(user, pass) + "\r\n" }
		openTunnel(t, e, target, as("a", "pa"))
		c, _, resp := dialConnect(t, e, target, as("a", "pa"))
		if resp.StatusCode != 503 {
			t.Fatalf("agent a's second tunnel: %d, want 503", resp.StatusCode)
		}
		c.Close()
		waitEventT(t, e, map[string]any{"kind": "connect", "agent": "a", "decision": "deny", "status": 503})
		openTunnel(t, e, target, as("b", "pb")) // another agent is not held up by a
	})
}

// Issue 11: an address the resolver returns in IPv4-mapped IPv6 form
// (as /etc/hosts or a resolver may) was judged as a non-public "mapped"
// address instead of as the IPv4 address it is.
func TestRobustMappedResolverAddress(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxyOpts(t, `
default: deny
ips:
  - allow: 127.0.0.0/8
hosts:
  - allow: mapped.test
`, nil, nil, func(c *proxy.Config) {
		c.Resolver = fixedResolver{"mapped.test": {netip.MustParseAddr("::ffff:127.0.0.1")}}
	})
	target := "mapped.test:" + up.port
	resp, body := rawRequest(t, e.addr, "GET http://"+target+"/m HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
	if resp.StatusCode != 200 || body != "GET /m host="+target+" len=0" {
		t.Fatalf("name resolving to ::ffff:127.0.0.1: %d %q", resp.StatusCode, body)
	}
	ev := e.waitEvent(map[string]any{"kind": "http", "host": "mapped.test", "status": 200})
	if ip, err := netip.ParseAddr(ev.str("ip")); err != nil || ip.Unmap() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("dialed %q, want 127.0.0.1", ev.str("ip"))
	}
}
