package rules

import (
	"strings"
	"testing"
	"time"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		glob string
		yes  []string
		no   []string
	}{
		{"/", []string{"/"}, []string{"/a", "/a/"}},
		{"/**", []string{"/", "/a", "/a/", "/a/b/c"}, nil},
		{"/repos/**", []string{"/repos", "/repos/", "/repos/a", "/repos/a/b/c"}, []string{"/reposx", "/repo", "/", "/x/repos/a"}},
		{"/repos", []string{"/repos"}, []string{"/repos/", "/repos/a", "/Repos"}},
		{"/repos/", []string{"/repos/"}, []string{"/repos", "/repos/a"}},
		{"/a/*", []string{"/a/x", "/a/"}, []string{"/a", "/a/x/y"}},
		{"/a/*/c", []string{"/a/b/c"}, []string{"/a/c", "/a//c", "/a/b/b/c"}}, // "//" is cleaned away
		{"/a/**/b", []string{"/a/b", "/a/x/b", "/a/x/y/b", "/a/b/b"}, []string{"/a/x/y/c", "/a/b/c", "/a/b/", "/b"}},
		{"/**/x", []string{"/x", "/a/b/x"}, []string{"/a/b/x/", "/a/xx", "/"}},
		{"/**/", []string{"/", "/a/", "/a/b/"}, []string{"/a"}},
		{"/a/**/**/b", []string{"/a/b", "/a/1/2/3/b"}, []string{"/a/1/2/3"}},
		{"/v1/*.json", []string{"/v1/a.json", "/v1/.json"}, []string{"/v1/a/b.json", "/v1/a.jsonx", "/v1/a.json/"}},
		{"/a*b*c", []string{"/abc", "/aXbYc", "/abcabc", "/abbc"}, []string{"/aXbY", "/bc", "/a/b/c"}},
		{"/*", []string{"/", "/anything"}, []string{"/a/b"}},
		{"/ü/*", []string{"/ü/x"}, []string{"/u/x"}},
	}
	for _, tt := range tests {
		g, err := compileGlob(tt.glob)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", tt.glob, err)
		}
		for _, p := range tt.yes {
			if !g.match(cleanPath(p)) {
				t.Errorf("%q does not match %q, want match", tt.glob, p)
			}
		}
		for _, p := range tt.no {
			if g.match(cleanPath(p)) {
				t.Errorf("%q matches %q, want no match", tt.glob, p)
			}
		}
	}
}

func TestGlobErrors(t *testing.T) {
	for _, tt := range []struct{ glob, want string }{
		{"", "must start with /"},
		{"a/b", "must start with /"},
		{"/***", `"**" must be a whole segment`},
		{"/a**", `"**" must be a whole segment`},
		{"/**b", `"**" must be a whole segment`},
		{"/a/x**y/b", `"**" must be a whole segment`},
		{"/search?q=*", "query strings"},
		{"/a#frag", "query strings"},
		{"/a%20b", "matched decoded"},
		{"/a/../b", `".." segments never match`},
		{"/a/./b", `"." segments never match`},
		{"/a//b", "empty segment"},
		{"/a\x01", "control character"},
	} {
		_, err := compileGlob(tt.glob)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("compileGlob(%q) = %v, want error containing %q", tt.glob, err, tt.want)
		}
	}
}

func TestGlobRank(t *testing.T) {
	rank := func(s string) int {
		g, err := compileGlob(s)
		if err != nil {
			t.Fatal(err)
		}
		return g.rank
	}
	// On "/repos" both "/repos" and "/repos/**" match: the literal wins.
	if !(rank("/repos") > rank("/repos/**")) {
		t.Errorf("rank(/repos)=%d not above rank(/repos/**)=%d", rank("/repos"), rank("/repos/**"))
	}
	// On "/repos/x": "/repos/*" beats "/repos/**", which beats "/**".
	if !(rank("/repos/*") > rank("/repos/**") && rank("/repos/**") > rank("/**")) {
		t.Errorf("ranks: /repos/*=%d /repos/**=%d /**=%d", rank("/repos/*"), rank("/repos/**"), rank("/**"))
	}
	if rank("/**") != 0 || rank("/") != 3 || rank("/v1/*.json") != 8 {
		t.Errorf("ranks: /**=%d /=%d /v1/*.json=%d", rank("/**"), rank("/"), rank("/v1/*.json"))
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                "/",
		"/a/b":             "/a/b",
		"/a/b/":            "/a/b/",
		"":                 "/",
		"a":                "/a",
		"*":                "/*",
		"/a//b":            "/a/b",
		"//a":              "/a",
		"/a/./b/":          "/a/b/",
		"/public/../admin": "/admin",
		"/..":              "/",
		"/../":             "/",
		"/a/b/..":          "/a",
		"/a/..b":           "/a/..b",
		"/a/.b/":           "/a/.b/",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGlobPathological checks that matching stays polynomial: these globs
// and paths make a backtracking matcher take exponential time.
func TestGlobPathological(t *testing.T) {
	long := strings.Repeat("/a", 5000)
	seg := "/" + strings.Repeat("a", 20000)
	for _, tt := range []struct{ glob, path string }{
		{"/**/**/**/**/**/**/**/**/**/**/b", long},
		{"/**/a/**/a/**/a/**/a/**/a/**/b", long},
		{"/a/**/a/**/a/**/a/**/a/**/a/**/a/**/c", long + "/b"},
		{"/*a*a*a*a*a*a*a*a*a*a*b", seg},
		{"/**/*a*a*a*a*b/**/c", long + seg},
	} {
		g, err := compileGlob(tt.glob)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if g.match(tt.path) {
			t.Errorf("%q matched", tt.glob)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%q took %v", tt.glob, d)
		}
	}
}

func TestGlobNoAlloc(t *testing.T) {
	g, err := compileGlob("/repos/**/v*/x")
	if err != nil {
		t.Fatal(err)
	}
	p := "/repos/a/b/c/v1/x"
	if !g.match(cleanPath(p)) {
		t.Fatal("no match")
	}
	noAllocs(t, "match", func() { g.match(cleanPath(p)) })
}

func TestGlobMatchLoose(t *testing.T) {
	tests := []struct {
		glob string
		yes  []string
		no   []string
	}{
		{"/repos/**", []string{"/REPOS", "/Repos/a", "/repos;x/a", "/REPOS;X", "/repos/a;b/c"}, []string{"/reposx", "/repo;s", "/x/repos"}},
		{"/a/*/c", []string{"/A/b/C", "/a/b;x/c;y", "/a;1/;2/c"}, []string{"/a/b/d", "/a/b/c/d"}},
		{"/v1/*.json", []string{"/V1/A.JSON", "/v1/a.json;x"}, []string{"/v1/a.jsonx", "/v1/a.js;on"}},
		{"/a;v=1/x", []string{"/a;v=1/x", "/A;V=1/X;y"}, []string{"/a/x", "/a;v=2/x"}},
		{"/ß*", []string{"/ß", "/ẞx"}, []string{"/ss"}}, // simple folding only, as strings.EqualFold
		{"/k", []string{"/K", "/\u212a"}, []string{"/kk"}},
	}
	for _, tt := range tests {
		g, err := compileGlob(tt.glob)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", tt.glob, err)
		}
		for _, p := range tt.yes {
			if !g.matchLoose(cleanPath(p)) {
				t.Errorf("%q does not loosely match %q, want match", tt.glob, p)
			}
		}
		for _, p := range tt.no {
			if g.matchLoose(cleanPath(p)) {
				t.Errorf("%q loosely matches %q, want no match", tt.glob, p)
			}
		}
	}
}

func TestParamReading(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/a/b", ""},
		{"/a;x/b", ""}, // same shape: matchLoose strips per segment
		{"/a/b;x", ""},
		{"/public/..;/admin", "/admin"},
		{"/public/..;x=1/admin/", "/admin/"},
		{"/a/.;x/b", "/a/b"},
		{"/;x/admin", "/admin"},
		{"/a/;x", "/a/"},
		{"/..;/..;/etc", "/etc"},
	} {
		if got := paramReading(tt.in); got != tt.want {
			t.Errorf("paramReading(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
