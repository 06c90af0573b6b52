package auth

import (
	"net/http/httptest"
	"testing"
)

// What authentication adds to a gateway request: a bearer token among
// 100, and a JWT from the provider once it has been verified.
func BenchmarkAuthenticate(b *testing.B) {
	b.Run("bearer", func(b *testing.B) {
		pol := "gateway:\n  tokens:\n"
		var tok string
		for i := range 100 {
			t, d, _ := NewToken()
			if i == 50 {
				tok = t
			}
			pol += "    - {agent: a, sha256: " + d + "}\n"
		}
		p := &livePolicy{}
		p.e.Store(loadPolicy(b, b.TempDir(), pol))
		a, _ := New(Options{Policy: p})
		r := httptest.NewRequest("POST", "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwt", func(b *testing.B) {
		idp := startIDP(b, nil)
		tok, _ := idp.login(b, nil, "openid")
		p := &livePolicy{}
		p.e.Store(loadPolicy(b, b.TempDir(), jwtPolicy(idp, "")))
		a, _ := New(Options{Policy: p, Client: plainClient()})
		r := httptest.NewRequest("POST", "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
