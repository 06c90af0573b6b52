package addr

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseAuthority(t *testing.T) {
	tests := []struct {
		in       string
		defPort  uint16
		wantName string
		wantIP   bool
		wantPort uint16
	}{
		{"Example.COM", 80, "example.com", false, 80},
		{"example.com.:8080", 80, "example.com", false, 8080},
		{"EXAMPLE.com.", 443, "example.com", false, 443},
		{"bücher.example:443", 0, "xn--bcher-kva.example", false, 443},
		{"BÜCHER.example", 0, "xn--bcher-kva.example", false, 0},
		{"xn--bcher-kva.example", 0, "xn--bcher-kva.example", false, 0},
		{"_srv.example.com", 0, "_srv.example.com", false, 0},
		{"127.0.0.1:80", 0, "127.0.0.1", true, 80},
		{"2130706433", 80, "127.0.0.1", true, 80},
		{"0x7f000001:81", 80, "127.0.0.1", true, 81},
		{"0x7F.1", 80, "127.0.0.1", true, 80},
		{"0177.0.0.1", 80, "127.0.0.1", true, 80},
		{"0177.0.0.01", 80, "127.0.0.1", true, 80},
		{"127.1", 80, "127.0.0.1", true, 80},
		{"127.0.1", 80, "127.0.0.1", true, 80},
		{"10.0.0.1.", 80, "10.0.0.1", true, 80},
		{"169.254.169.254", 80, "169.254.169.254", true, 80},
		{"[::1]:8443", 0, "::1", true, 8443},
		{"[::ffff:127.0.0.1]", 443, "::ffff:127.0.0.1", true, 443},
		{"[::FFFF:7f00:1]", 443, "::ffff:127.0.0.1", true, 443},
		{"[2001:DB8::1]:1", 0, "2001:db8::1", true, 1},
		{"0", 80, "0.0.0.0", true, 80},
	}
	for _, tt := range tests {
		h, err := ParseAuthority(tt.in, tt.defPort)
		if err != nil {
			t.Errorf("ParseAuthority(%q): %v", tt.in, err)
			continue
		}
		if h.Name != tt.wantName || h.IsIP() != tt.wantIP || h.Port != tt.wantPort {
			t.Errorf("ParseAuthority(%q) = %+v, want name %q ip %v port %d", tt.in, h, tt.wantName, tt.wantIP, tt.wantPort)
		}
		if h.IsIP() && h.IP.String() != h.Name {
			t.Errorf("ParseAuthority(%q): Name %q != IP %s", tt.in, h.Name, h.IP)
		}
	}
}

func TestParseAuthorityRejects(t *testing.T) {
	for _, in := range []string{
		"", ":80", "example.com:", "example.com:0", "example.com:65536", "example.com:-1", "example.com:+80",
		"exa mple.com", "exa\x00mple.com", "example.com\x00", "a..b", ".example.com", "example..", "exa%00mple.com",
		"exa/mple.com", "user@example.com", "*.example.com", "::1", "[::1", "[::1]x", "[fe80::1%25eth0]",
		"[127.0.0.1]", "1.2.3.999", "1.2.3.4.5", "256.1", "09.1.1.1", "4294967296", "1.2.3.04000",
		"1.example.123", string(make([]byte, 300)),
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
	} {
		if h, err := ParseAuthority(in, 80); err == nil {
			t.Errorf("ParseAuthority(%q) = %+v, want error", in, h)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseAuthority(%q): error %v does not wrap ErrInvalid", in, err)
		}
	}
}

func TestCanonicalNameRefusesIPs(t *testing.T) {
	for _, in := range []string{"127.0.0.1", "2130706433", "0x7f.1", "::1"} {
		if _, err := CanonicalName(in); err == nil {
			t.Errorf("CanonicalName(%q) accepted an IP literal", in)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		ip   string
		want Class
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"100.64.0.1", "cgnat"},
		{"100.100.100.200", "cgnat"},
		{"fd00:ec2::254", "ula"},
		{"fc00::1", "ula"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"::ffff:127.0.0.1", "ipv4-mapped"},
		{"::ffff:8.8.8.8", "ipv4-mapped"},
		{"::127.0.0.1", "ipv4-compatible"},
		{"64:ff9b::a00:1", "nat64"},
		{"64:ff9b:1::1", "nat64"},
		{"2002:a00:1::", "6to4"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"},
		{"2001:db8::1", "documentation"},
		{"192.0.0.192", "ietf-protocol"},
		{"198.18.0.1", "benchmark"},
	}
	for _, tt := range tests {
		if got := Classify(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Classify(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	if Classify(netip.Addr{}) == "" {
		t.Error("an invalid address classified as public")
	}
}

func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::1]:80", "0x7f.1", "bücher.de", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseAuthority(s, 80)
		if err != nil {
			return
		}
		// Canonical output is a fixed point.
		h2, err := ParseAuthority(h.String(), 80)
		if err != nil || h2 != h {
			t.Fatalf("%q -> %q -> %+v, %v", s, h.String(), h2, err)
		}
	})
}

func TestClassRange(t *testing.T) {
	for _, tt := range []struct{ ip, prefix string }{
		{"10.1.2.3", "10.0.0.0/8"},
		{"127.0.0.2", "127.0.0.0/8"},
		{"169.254.169.254", "169.254.0.0/16"},
		{"::ffff:10.0.0.1", "::ffff:0:0/96"},
	} {
		c, p := ClassRange(netip.MustParseAddr(tt.ip))
		if c == "" || p != netip.MustParsePrefix(tt.prefix) {
			t.Errorf("ClassRange(%s) = %q %s, want %s", tt.ip, c, p, tt.prefix)
		}
	}
	if c, p := ClassRange(netip.MustParseAddr("8.8.8.8")); c != "" || p.IsValid() {
		t.Errorf("public address: %q %s", c, p)
	}
}
