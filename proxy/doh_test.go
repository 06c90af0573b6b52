package proxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
)

// dnsQuery is a DNS query for example.org A, packed.
var dnsQuery = []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0, 0, 1, 0, 1}

func dohRequest(method, rawQuery, contentType, accept string) *http.Request {
	r := &http.Request{Method: method, URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	return r
}

func TestIsDoH(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString(dnsQuery)
	for _, tt := range []struct {
		query, ct, accept string
		want              bool
	}{
		{"", "application/dns-message", "", true},
		{"", "APPLICATION/DNS-MESSAGE ; x=y", "", true},
		{"", "", "text/html, application/dns-message;q=0.5", true},
		{"", "", "application/dns-json", true},
		{"dns=" + b64, "", "", true},
		{"a=1;DNS=" + b64, "", "", true},
		{"%64%6es=" + b64, "", "", true},
		{"dns=" + base64.StdEncoding.EncodeToString(dnsQuery), "", "", true},
		{"dns=on", "", "", false},
		{"dnsname=" + b64, "", "", false},
		{"", "application/json", "text/event-stream", false},
		{"", "application/dns", "", false},
		{"q=dns", "text/plain", "*/*", false},
	} {
		if got := isDoH(dohRequest("GET", tt.query, tt.ct, tt.accept)); got != tt.want {
			t.Errorf("query %q content-type %q accept %q: %v, want %v", tt.query, tt.ct, tt.accept, got, tt.want)
		}
	}
}

// FuzzIsDoH: no input panics, ASCII case never changes the verdict on a
// media type, and a dns= parameter carrying a DNS message is found
// whatever else the query holds.
func FuzzIsDoH(f *testing.F) {
	f.Add("dns=AAABAAABAAAAAAAAB2V4YW1wbGUDb3JnAAABAAE", "application/dns-message", "*/*")
	f.Add("a=b;c", "text/plain; charset=utf-8", "application/dns-json, text/html")
	f.Add("%zz=%", "", "")
	f.Fuzz(func(t *testing.T, query, ct, accept string) {
		got := isDoH(dohRequest("GET", query, ct, accept))
		if up := isDoH(dohRequest("GET", query, asciiUpper(ct), asciiUpper(accept))); up != got {
			t.Fatalf("case changed the verdict: %q %q", ct, accept)
		}
		if !got && namesDoHType(ct) {
			t.Fatalf("content type %q names DoH but the request is not", ct)
		}
		q := query + "&dns=" + base64.RawURLEncoding.EncodeToString(dnsQuery)
		if !isDoH(dohRequest("GET", q, ct, accept)) {
			t.Fatalf("dns= not found in %q", q)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
