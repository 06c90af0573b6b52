package addr

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseIP recognises an IP literal in every spelling a resolver or URL
// parser would accept: dotted IPv4, the inet_aton forms (one to four parts,
// each decimal, 0x-hex or 0-octal: 2130706433, 0x7f000001, 0177.0.0.1,
// 127.1), and IPv6 without brackets or zone.
//
// isIP reports whether s must be treated as an IP rather than a name; it is
// true with a non-nil err when s looks numeric but is not a valid address
// (as in "1.2.3.999"). Following the WHATWG URL standard, a host whose last
// label is numeric is an IPv4 literal or nothing: such strings never fall
// through to name matching.
func ParseIP(s string) (ip netip.Addr, isIP bool, err error) {
	if strings.IndexByte(s, ':') >= 0 {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return netip.Addr{}, true, fmt.Errorf("%w: bad IPv6 literal %q", ErrInvalid, s)
		}
		return ip, true, nil
	}
	t := strings.TrimSuffix(s, ".")
	last := t[strings.LastIndexByte(t, '.')+1:]
	if !numericLabel(last) {
		return netip.Addr{}, false, nil
	}
	ip, ok := parseInetAton(t)
	if !ok {
		return netip.Addr{}, true, fmt.Errorf("%w: bad IPv4 literal %q", ErrInvalid, s)
	}
	return ip, true, nil
}

// numericLabel reports whether a label is a number in the URL standard's
// sense: decimal digits, or 0x followed by hex digits (possibly none).
func numericLabel(l string) bool {
	if l == "" {
		return false
	}
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		for i := 2; i < len(l); i++ {
			if hexVal(l[i]) < 0 {
				return false
			}
		}
		return true
	}
	return allDigits(l)
}

func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		v, ok := parseNumber(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	n := len(parts)
	for i := 0; i < n-1; i++ {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
	}
	if vals[n-1] >= 1<<(8*(5-n)) {
		return netip.Addr{}, false
	}
	var u uint32
	for i := 0; i < n-1; i++ {
		u |= uint32(vals[i]) << (8 * (3 - i))
	}
	u |= uint32(vals[n-1])
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}), true
}

// parseNumber parses one inet_aton part. Values are capped well above
// 2^32 so that overlong input cannot overflow into a valid address.
func parseNumber(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base, digits := uint64(10), p
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, digits = 16, p[2:]
		if digits == "" {
			return 0, true
		}
	case len(p) >= 2 && p[0] == '0':
		base, digits = 8, p[1:]
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		d := hexVal(digits[i])
		if d < 0 || uint64(d) >= base {
			return 0, false
		}
		v = v*base + uint64(d)
		if v > 1<<33 {
			return 0, false
		}
	}
	return v, true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
