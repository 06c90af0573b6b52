package proxy

import (
	"net/url"
	"testing"
)

func TestAmbiguousPath(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want bool
	}{
		{"/a/b", false}, {"/", false}, {"", false}, {"/a/b/", false}, {"/a%20b", false}, {"/%7Euser", false},
		{"/a/../admin", true}, {"/a/./b", true}, {"/..", true}, {"/a//b", true},
		{"/public/..;/admin", true}, {"/a/.;x/b", true}, {"/a;b/c", false},
		{"/a%2Fb", true}, {"/a%2fb", true}, {"/a%5Cb", true}, {"/a\\b", true}, {"/%2e%2e/admin", true},
	} {
		u, err := url.Parse("https://x" + tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := ambiguousPath(u); got != tt.want {
			t.Errorf("ambiguousPath(%q) = %v, want %v", tt.raw, got, tt.want)
		}
	}
}
