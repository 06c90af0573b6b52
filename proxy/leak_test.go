package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/rules"
)

// decodePrefix undoes a body's coding as far as its first part goes: a
// gzip stream cut short still shows what it held up to the cut, and a
// coding agentg cannot undo is an error, never the bytes as they are.
func TestDecodePrefix(t *testing.T) {
	text := strings.Repeat("token ghp_value-1234567890 and more text; ", 400)
	var gz, zl, fl bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(text))
	w.Close()
	z := zlib.NewWriter(&zl)
	z.Write([]byte(text))
	z.Close()
	f, _ := flate.NewWriter(&fl, flate.BestCompression)
	f.Write([]byte(text))
	f.Close()
	tests := []struct {
		name, enc string
		raw       []byte
		prefix    string // what the decoded form starts with; "" : an error
	}{
		{"gzip", "gzip", gz.Bytes(), text},
		{"x-gzip, identity", "identity, x-gzip", gz.Bytes(), text},
		{"gzip cut short", "gzip", gz.Bytes()[:gz.Len()/2], "token ghp_value-1234567890"},
		{"zlib deflate", "deflate", zl.Bytes(), text},
		{"raw deflate", "deflate", fl.Bytes(), text},
		{"br", "br", []byte("anything"), ""},
		{"not gzip", "gzip", []byte("plain text"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePrefix(tt.raw, tt.enc)
			if tt.prefix == "" {
				if err == nil {
					t.Fatalf("no error, %d bytes", len(got))
				}
				return
			}
			if err != nil || !strings.HasPrefix(string(got), tt.prefix[:min(len(tt.prefix), len(got))]) || len(got) < len("token ghp_value-1234567890") {
				t.Fatalf("%d bytes, %v", len(got), err)
			}
			if len(got) > leakBodyMax {
				t.Fatalf("decoded %d bytes, more than %d", len(got), leakBodyMax)
			}
		})
	}
}

func TestJoinNames(t *testing.T) {
	for _, tt := range [][3]string{{"", "", ""}, {"a", "", "a"}, {"", "b", "b"}, {"a", "a", "a"}, {"a,b", "b,c", "a,b,c"}} {
		if got := joinNames(tt[0], tt[1]); got != tt[2] {
			t.Errorf("joinNames(%q, %q) = %q, want %q", tt[0], tt[1], got, tt[2])
		}
	}
}

// leakServer is the part of a Server the leak guard uses, under a policy
// holding credentials, its secrets read.
func leakServer(t testing.TB) (*Server, *rules.Engine) {
	e, err := rules.Parse("policy.yaml", []byte(`credentials:
  secrets:
    gh: {insecure_inline: ghp_value-1234567890}
  bindings:
    - {host: api.test, secret: gh, header: {name: Authorization, value: "Bearer {{secret}}"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := creds.NewGuard(nil)
	<-g.Use(context.Background(), e.Credentials().Store())
	return &Server{leaks: g}, e
}

// A request where nothing is found costs the guard no allocation.
func TestGuardCredentialsNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool allocates at random")
	}
	s, e := leakServer(t)
	r := httptest.NewRequest("GET", "https://other.test/v1/items?page=2&q=caf%C3%A9", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "agent/1.0")
	r.Header.Set("Cookie", "session=abc%3D%3D")
	f := &flow{host: addr.Host{Name: "other.test", Port: 443}, scheme: "https", path: "/v1/items"}
	if n := testing.AllocsPerRun(100, func() {
		if ref, _ := s.guardCredentials(e, f, r); ref != nil {
			t.Fatal(ref.text)
		}
	}); n != 0 {
		t.Errorf("guardCredentials allocates %v times on a request where nothing is found", n)
	}
	r.Header.Set("X-Note", "ghp_value-1234567890")
	if ref, _ := s.guardCredentials(e, f, r); ref == nil || ref.status != 403 || f.credential != "gh" {
		t.Fatalf("a value toward an unbound host: %+v", ref)
	}
}

// BenchmarkGuardRequest: the leak guard on a request with a few headers
// and no body, under a policy holding a secret.
func BenchmarkGuardRequest(b *testing.B) {
	s, e := leakServer(b)
	r := httptest.NewRequest("GET", "https://other.test/v1/items?page=2&q=caf%C3%A9", nil)
	for _, h := range []string{"Accept", "User-Agent", "Accept-Language", "X-Request-Id", "Traceparent", "Cookie"} {
		r.Header.Set(h, "value-of-"+h+"-0123456789abcdef")
	}
	f := &flow{host: addr.Host{Name: "other.test", Port: 443}, scheme: "https", path: "/v1/items"}
	b.ReportAllocs()
	for b.Loop() {
		s.guardCredentials(e, f, r)
	}
}
