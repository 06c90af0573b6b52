package proxy

import (
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Recognising DNS-over-HTTPS on the exchange path, so that a resolver
// the public list does not name is still refused (rules.DNSRules.DoH,
// rule builtin:doh). Detection reads as leniently as a DoH server would
// (RFC 8484 and the JSON dialect Google, Cloudflare and AliDNS serve):
//
//   - a Content-Type or an Accept naming application/dns-message or
//     application/dns-json, in any case, among several values or with
//     parameters;
//   - a dns query parameter (any case, percent-encoded or not, after &
//     or ;) whose value is base64url (padded or not) of at least a DNS
//     header: what a GET carries. A dns= parameter that cannot be a DNS
//     message is no DoH server's query, and is left to the other rules.

// dohMediaTypes are the media types of DNS over HTTP.
var dohMediaTypes = []string{"application/dns-message", "application/dns-json", "application/dns-udpwireformat"}

// isDoH reports a request shaped as a DNS-over-HTTPS exchange.
func isDoH(r *http.Request) bool {
	for _, k := range [...]string{"Content-Type", "Accept"} {
		for _, v := range r.Header.Values(k) {
			if namesDoHType(v) {
				return true
			}
		}
	}
	return r.URL != nil && r.URL.RawQuery != "" && hasDNSParam(r.URL.RawQuery)
}

// namesDoHType reports a header value listing a DoH media type.
func namesDoHType(v string) bool {
	if !strings.Contains(strings.ToLower(v), "dns") {
		return false // the common case, without parsing
	}
	for part := range strings.SplitSeq(v, ",") {
		mt, _, err := mime.ParseMediaType(part)
		if err != nil {
			mt, _, _ = strings.Cut(part, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
		}
		for _, t := range dohMediaTypes {
			if mt == t {
				return true
			}
		}
	}
	return false
}

// hasDNSParam reports a dns= parameter carrying a DNS message.
func hasDNSParam(q string) bool {
	if !strings.Contains(strings.ToLower(q), "dns") && !strings.Contains(q, "%") {
		return false
	}
	for kv := range strings.FieldsFuncSeq(q, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if !strings.EqualFold(strings.TrimSpace(k), "dns") {
			continue
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		v = strings.TrimRight(strings.TrimSpace(v), "=")
		if b, err := base64.RawURLEncoding.DecodeString(v); err == nil && len(b) >= 12 {
			return true
		}
		if b, err := base64.RawStdEncoding.DecodeString(v); err == nil && len(b) >= 12 {
			return true
		}
	}
	return false
}
