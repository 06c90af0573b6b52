// Package addr turns whatever a client sent as a destination (a CONNECT
// authority, an absolute URI's host, a Host header, a TLS SNI, a DNS name, an
// IP literal in any spelling) into the one canonical form that every rule
// sees.
//
// The contract: every door of agentg (explicit proxy, transparent listener,
// MITM, DNS filter) calls ParseAuthority or CanonicalName before it asks the
// policy anything, so that two spellings of one destination can never get two
// different decisions. Names come out lower-case, without a trailing dot, in
// IDNA punycode; IP literals in any spelling (2130706433, 0x7f.1, 0177.0.0.1,
// [::ffff:127.0.0.1]) come out as IPs, never as names. Anything that is
// neither a valid name nor an IP is an error: the caller denies it.
package addr

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Host is a canonical destination.
type Host struct {
	// Name is the canonical host: a lower-case punycode name without a
	// trailing dot, or, when IP is valid, the IP's canonical string.
	Name string
	// IP is set when the destination was an IP literal.
	IP netip.Addr
	// Port is the destination port; 0 when none was given and no default.
	Port uint16
}

// IsIP reports whether the destination was an IP literal.
func (h Host) IsIP() bool { return h.IP.IsValid() }

// String returns host:port, with brackets around an IPv6 literal.
func (h Host) String() string {
	name := h.Name
	if h.IP.Is6() {
		name = "[" + name + "]"
	}
	if h.Port == 0 {
		return name
	}
	return name + ":" + strconv.Itoa(int(h.Port))
}

// Hostname returns the name with brackets around an IPv6 literal, as it
// belongs in a URL or a Host header.
func (h Host) Hostname() string {
	if h.IP.Is6() {
		return "[" + h.Name + "]"
	}
	return h.Name
}

// ErrInvalid is wrapped by every error this package returns.
var ErrInvalid = errors.New("invalid host")

// ParseAuthority parses "host", "host:port", "[v6]" or "[v6]:port" and
// canonicalises the host. defaultPort is used when the authority has no port.
func ParseAuthority(s string, defaultPort uint16) (Host, error) {
	hostPart, portPart, err := splitHostPort(s)
	if err != nil {
		return Host{}, err
	}
	port := defaultPort
	if portPart != "" {
		p, err := strconv.ParseUint(portPart, 10, 16)
		if err != nil || p == 0 || !allDigits(portPart) {
			return Host{}, fmt.Errorf("%w: bad port %q", ErrInvalid, portPart)
		}
		port = uint16(p)
	}
	h, err := Canonical(hostPart)
	if err != nil {
		return Host{}, err
	}
	h.Port = port
	return h, nil
}

// Canonical canonicalises a host without a port. Brackets around an IPv6
// literal are accepted and removed.
func Canonical(s string) (Host, error) {
	if strings.HasPrefix(s, "[") {
		if !strings.HasSuffix(s, "]") {
			return Host{}, fmt.Errorf("%w: unclosed bracket in %q", ErrInvalid, s)
		}
		ip, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return Host{}, fmt.Errorf("%w: bad IPv6 literal %q", ErrInvalid, s)
		}
		return Host{Name: ip.String(), IP: ip}, nil
	}
	if ip, isIP, err := ParseIP(s); isIP {
		if err != nil {
			return Host{}, err
		}
		return Host{Name: ip.String(), IP: ip}, nil
	}
	name, err := CanonicalName(s)
	if err != nil {
		return Host{}, err
	}
	return Host{Name: name}, nil
}

// CanonicalName canonicalises a DNS name: it rejects IP literals (use
// Canonical for input that may be either), lower-cases, strips one trailing
// dot and converts Unicode labels to punycode. Characters outside letters,
// digits, '-', '_' and '.' are refused, as are empty labels and names that
// are too long.
func CanonicalName(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty host", ErrInvalid)
	}
	if len(s) > 1024 {
		return "", fmt.Errorf("%w: host of %d bytes", ErrInvalid, len(s))
	}
	name := strings.TrimSuffix(s, ".")
	if isPlainASCII(name) {
		name = strings.ToLower(name)
	} else {
		var err error
		name, err = idnaProfile.ToASCII(name)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrInvalid, s, err)
		}
	}
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalid, s, err)
	}
	if _, isIP, _ := ParseIP(name); isIP {
		return "", fmt.Errorf("%w: %q is an IP literal, not a name", ErrInvalid, s)
	}
	return name, nil
}

// idnaProfile maps Unicode input the way browsers do for lookups, but lets
// underscores through: they occur in real service names, and checkName
// polices the result.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false), idna.BidiRule())

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func splitHostPort(s string) (host, port string, err error) {
	if s == "" {
		return "", "", fmt.Errorf("%w: empty authority", ErrInvalid)
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("%w: unclosed bracket in %q", ErrInvalid, s)
		}
		host, rest := s[:end+1], s[end+1:]
		switch {
		case rest == "":
			return host, "", nil
		case strings.HasPrefix(rest, ":") && len(rest) > 1:
			return host, rest[1:], nil
		default:
			return "", "", fmt.Errorf("%w: junk after IPv6 literal in %q", ErrInvalid, s)
		}
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, "", nil
	}
	if strings.IndexByte(s[:i], ':') >= 0 {
		// More than one colon without brackets: an IPv6 literal with no
		// port is ambiguous, so it is refused rather than guessed at.
		return "", "", fmt.Errorf("%w: IPv6 literal without brackets in %q", ErrInvalid, s)
	}
	if i == len(s)-1 {
		return "", "", fmt.Errorf("%w: empty port in %q", ErrInvalid, s)
	}
	return s[:i], s[i+1:], nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
