package mcp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestTakeEmptyBody(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  io.Reader
		cl    int64
		te    []string
		empty bool
	}{
		{"no body", nil, 0, nil, true},
		{"length 0", strings.NewReader(""), 0, nil, true},
		{"chunked, empty", strings.NewReader(""), -1, []string{"chunked"}, true},
		{"unknown length, empty", strings.NewReader(""), -1, nil, true},
		{"chunked, a byte", strings.NewReader("{"), -1, []string{"chunked"}, false},
		{"length", strings.NewReader(`{"a":1}`), 7, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x.test/", tc.body)
			r.ContentLength, r.TransferEncoding = tc.cl, tc.te
			empty, first, err := takeEmptyBody(r)
			if err != nil || empty != tc.empty {
				t.Fatalf("empty %v %v, want %v", empty, err, tc.empty)
			}
			if empty && (r.Body != http.NoBody || r.ContentLength != 0 || r.TransferEncoding != nil) {
				t.Fatalf("an empty body left as %v %d %v", r.Body, r.ContentLength, r.TransferEncoding)
			}
			if !empty && len(first) != 1 {
				t.Fatalf("first byte %q", first)
			}
		})
	}
}

// A second claim of an id in one session fails until the first is released;
// other sessions are apart.
func TestInFlightIDs(t *testing.T) {
	var s inFlightIDs
	if !s.claim("a", "n:1") || s.claim("a", "n:1") || !s.claim("b", "n:1") || !s.claim("a", "n:2") {
		t.Fatal("claims")
	}
	s.release("a", "n:1")
	if !s.claim("a", "n:1") {
		t.Fatal("a released id cannot be claimed again")
	}
}
