package test

import (
	"strings"
	"testing"
)

// Every spelling of a destination reaches the same decision, and IP
// literals are decided as IPs, never as names.
func TestNormalisationAndIPLiterals(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, basePolicy(`
hosts:
  - allow: allowed.test
    id: allow-test
  - deny: xn--bcher-kva.test
    id: deny-buecher
  - allow: "*.wild.test"
    id: allow-wild
  - deny: "2130706433.test"
  - allow: [internal.test, metadata.test]
`), nil)

	tests := []struct {
		name, target, host string
		status             int
		rule, eventHost    string
	}{
		{"upper case and trailing dot", "http://ALLOWED.Test.:" + p + "/", "ALLOWED.Test.:" + p, 200, "allow-test", "allowed.test"},
		{"unicode name to punycode", "http://bücher.test:" + p + "/", "xn--bcher-kva.test:" + p, 403, "deny-buecher", "xn--bcher-kva.test"},
		{"punycode as sent", "http://XN--BCHER-KVA.test:" + p + "/", "XN--BCHER-KVA.test:" + p, 403, "deny-buecher", "xn--bcher-kva.test"},
		{"wildcard subdomain", "http://sub.wild.test:" + p + "/", "sub.wild.test:" + p, 200, "allow-wild", "sub.wild.test"},
		{"dotted loopback by CIDR", "http://127.0.0.1:" + p + "/", "127.0.0.1:" + p, 200, "open-loopback", "127.0.0.1"},
		{"decimal IPv4", "http://2130706433:" + p + "/", "2130706433:" + p, 200, "open-loopback", "127.0.0.1"},
		{"hex IPv4", "http://0x7f000001:" + p + "/", "0x7f000001:" + p, 200, "open-loopback", "127.0.0.1"},
		{"octal IPv4", "http://0177.0.0.1:" + p + "/", "0177.0.0.1:" + p, 200, "open-loopback", "127.0.0.1"},
		{"short IPv4", "http://127.1:" + p + "/", "127.1:" + p, 200, "open-loopback", "127.0.0.1"},
		{"mixed short hex", "http://0x7f.1:" + p + "/", "0x7f.1:" + p, 200, "open-loopback", "127.0.0.1"},
		{"other loopback not opened", "http://127.0.0.2:" + p + "/", "127.0.0.2:" + p, 403, "builtin:non-public:loopback", "127.0.0.2"},
		{"v4-mapped IPv6", "http://[::ffff:127.0.0.1]:" + p + "/", "[::ffff:127.0.0.1]:" + p, 403, "builtin:non-public:ipv4-mapped", "::ffff:127.0.0.1"},
		{"IPv6 loopback", "http://[::1]:" + p + "/", "[::1]:" + p, 403, "builtin:non-public:loopback", "::1"},
		{"NAT64", "http://[64:ff9b::7f00:1]:" + p + "/", "[64:ff9b::7f00:1]:" + p, 403, "builtin:non-public:nat64", "64:ff9b::7f00:1"},
		{"metadata literal", "http://169.254.169.254/latest/meta-data/", "169.254.169.254", 403, "builtin:non-public:link-local", "169.254.169.254"},
		{"metadata decimal", "http://2852039166/", "2852039166", 403, "builtin:non-public:link-local", "169.254.169.254"},
		{"private by name", "http://internal.test:" + p + "/", "internal.test:" + p, 403, "builtin:non-public:private", "internal.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawRequest(t, e.addr, "GET "+tt.target+" HTTP/1.1\r\nHost: "+tt.host+"\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %q", resp.StatusCode, tt.status, body)
			}
			if tt.status == 403 && resp.Header.Get("X-Agentg-Rule") != tt.rule {
				t.Fatalf("rule %q, want %q", resp.Header.Get("X-Agentg-Rule"), tt.rule)
			}
			if tt.status == 200 && !strings.Contains(body, "GET /") {
				t.Fatalf("body %q", body)
			}
			e.waitEvent(map[string]any{"host": tt.eventHost, "rule": tt.rule, "status": tt.status})
		})
	}
}

func TestInvalidHostsRefused(t *testing.T) {
	e := startProxy(t, policyWithDefault("allow", ""), nil)
	for _, raw := range []string{
		"GET http://1.2.3.999/ HTTP/1.1\r\nHost: 1.2.3.999\r\n\r\n",
		"GET http://a..b/ HTTP/1.1\r\nHost: a..b\r\n\r\n",
		"GET http://exa%00mple.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"CONNECT exa%00mple.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"CONNECT [::1 HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		resp, body := rawRequest(t, e.addr, raw)
		if resp.StatusCode != 400 {
			t.Errorf("%q: %d %q, want 400", raw, resp.StatusCode, body)
		}
	}
}

func TestHostHeaderMismatch(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"other host", "GET http://allowed.test:" + p + "/ HTTP/1.1\r\nHost: denied.test:" + p + "\r\n\r\n", 421},
		{"other port", "GET http://allowed.test:" + p + "/ HTTP/1.1\r\nHost: allowed.test:1\r\n\r\n", 421},
		{"default port vs explicit", "GET http://allowed.test:" + p + "/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 421},
		{"same host, other spelling", "GET http://allowed.test:" + p + "/ HTTP/1.1\r\nHost: ALLOWED.TEST.:" + p + "\r\n\r\n", 200},
		{"HTTP/1.0 without Host", "GET http://allowed.test:" + p + "/ HTTP/1.0\r\n\r\n", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawRequest(t, e.addr, tt.raw)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tt.status)
			}
		})
	}
	e.waitEvent(map[string]any{"status": 421, "decision": "deny", "rule": "request"})
}

// The Host check must follow request boundaries on a kept-alive
// connection, across bodies of both framings.
func TestHostHeaderTrackingAcrossBodies(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	fake := "GET http://allowed.test:" + p + "/ HTTP/1.1\r\nHost: evil.test\r\n\r\n" // inside a body: not a request
	reqs := "POST http://allowed.test:" + p + "/a HTTP/1.1\r\nHost: allowed.test:" + p + "\r\nContent-Length: " + itoa(len(fake)) + "\r\n\r\n" + fake +
		"POST http://allowed.test:" + p + "/b HTTP/1.1\r\nHost: allowed.test:" + p + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n" + itoa16(len(fake)) + "\r\n" + fake + "\r\n0\r\n\r\n" +
		"GET http://allowed.test:" + p + "/c HTTP/1.1\r\nHost: allowed.test:" + p + "\r\n\r\n" +
		"GET http://allowed.test:" + p + "/d HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n"
	got := pipeline(t, e.addr, reqs, 4)
	want := []int{200, 200, 200, 421}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pipelined statuses %v, want %v", got, want)
		}
	}
}
