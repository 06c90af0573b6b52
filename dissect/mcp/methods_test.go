package mcp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestIsUpgrade(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{}, false},
		{http.Header{"Connection": {"keep-alive"}}, false},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true},
		{http.Header{"Connection": {"keep-alive, UPGRADE"}}, true},
		{http.Header{"Upgrade": {"h2c"}}, true},
	} {
		if got := IsUpgrade(tc.h); got != tc.want {
			t.Errorf("IsUpgrade(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

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
