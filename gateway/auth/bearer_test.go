package auth

import (
	"net/http"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	tok, digest, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, _ := NewToken()
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 || tok == tok2 || !isB64Token(tok) {
		t.Fatalf("token %q (second %q)", tok, tok2)
	}
	if len(digest) != 64 || digest != Digest(tok) || strings.Contains(digest, tok) {
		t.Fatalf("digest %q", digest)
	}
}

// A bearer token is checked by its digest: the right one names its agent
// and reaches the handler; a wrong, missing or malformed one gets 401
// with the challenge RFC 6750 asks for, one event naming the check, and
// never reaches the handler (shown by the count after a later good one).
func TestBearer(t *testing.T) {
	coderTok, coderDigest, _ := NewToken()
	builderTok, builderDigest, _ := NewToken()
	wrongTok, _, _ := NewToken()
	p := &livePolicy{}
	p.e.Store(loadPolicy(t, t.TempDir(), `gateway:
  realm: agentg test
  resource_metadata: https://gw.example/.well-known/oauth-protected-resource
  tokens:
    - {agent: coder, sha256: `+coderDigest+`, id: coder-laptop}
    - {agent: builder, sha256: `+builderDigest+`}
`))
	d := startDoor(t, Options{Policy: p}, nil)

	tests := []struct {
		name      string
		auth      []string
		agent     string // "" refused
		check     string
		challenge string
	}{
		{"right token", []string{"Bearer " + coderTok}, "coder", "", ""},
		{"scheme in any case", []string{"bearer " + builderTok}, "builder", "", ""},
		{"wrong token", []string{"Bearer " + wrongTok}, "", "unknown-token", `Bearer realm="agentg test", error="invalid_token", error_description="bearer unknown-token", resource_metadata="https://gw.example/.well-known/oauth-protected-resource"`},
		{"no credential", nil, "", "missing", `Bearer realm="agentg test", resource_metadata="https://gw.example/.well-known/oauth-protected-resource"`},
		{"basic", []string{"Basic Y29kZXI6eA=="}, "", "malformed", `Bearer realm="agentg test", error="invalid_request", error_description="bearer malformed", resource_metadata="https://gw.example/.well-known/oauth-protected-resource"`},
		{"two headers", []string{"Bearer " + coderTok, "Bearer " + coderTok}, "", "malformed", ""},
		{"not a b64token", []string{"Bearer " + coderTok + " x"}, "", "malformed", ""},
		{"token with a suffix", []string{"Bearer " + coderTok + "A"}, "", "unknown-token", ""},
		{"empty", []string{"Bearer "}, "", "malformed", ""},
	}
	refused := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(d.seen())
			got := d.call(t, nil, tt.auth...)
			if tt.agent != "" {
				if got.status != http.StatusOK || got.body != "reached "+tt.agent {
					t.Fatalf("got %d %q, want the handler as %s", got.status, got.body, tt.agent)
				}
				if s := d.seen(); len(s) != before+1 || s[len(s)-1].Agent != tt.agent || s[len(s)-1].Method != "bearer" {
					t.Fatalf("handler saw %+v", s)
				}
				return
			}
			refused++
			if got.status != http.StatusUnauthorized || got.challenge == "" {
				t.Fatalf("got %d, challenge %q; want 401 with WWW-Authenticate", got.status, got.challenge)
			}
			if tt.challenge != "" && got.challenge != tt.challenge {
				t.Errorf("challenge\n %s\nwant\n %s", got.challenge, tt.challenge)
			}
			// Positive evidence that the refused request reached nothing:
			// a good one after it is the only one the handler saw.
			if g := d.call(t, nil, "Bearer "+coderTok); g.status != http.StatusOK {
				t.Fatalf("the good request after it got %d", g.status)
			}
			if s := d.seen(); len(s) != before+1 {
				t.Fatalf("handler reached %d times, want once (the good request)", len(s)-before)
			}
			evs := d.refusals(t)
			if len(evs) != refused {
				t.Fatalf("%d refusal events, want %d (one per refusal)", len(evs), refused)
			}
			e := evs[len(evs)-1]
			if e["door"] != "gateway" || e["decision"] != "deny" || e["status"] != float64(401) ||
				!strings.Contains(e["reason"].(string), "gateway auth: ") || !strings.HasSuffix(e["rule_source"].(string), "policy.yaml:1") {
				t.Errorf("event %v", e)
			}
			if want := map[string]string{"unknown-token": "not one the policy's gateway tokens hold", "missing": "no credential",
				"malformed": "bearer: "}[tt.check]; !strings.Contains(e["reason"].(string), want) {
				t.Errorf("reason %q, want it to name the check (%q)", e["reason"], want)
			}
		})
	}
	noSecrets(t, d.log.String(), coderTok, builderTok, wrongTok)
}

// A policy without a gateway section accepts no one: fail closed.
func TestNoGatewaySection(t *testing.T) {
	tok, _, _ := NewToken()
	p := &livePolicy{}
	p.e.Store(loadPolicy(t, t.TempDir(), "default: deny\n"))
	d := startDoor(t, Options{Policy: p}, nil)
	if got := d.call(t, nil, "Bearer "+tok); got.status != http.StatusUnauthorized || got.challenge != `Bearer realm="agentg"` {
		t.Fatalf("got %d %q", got.status, got.challenge)
	}
	if evs := d.refusals(t); len(evs) != 1 || !strings.Contains(evs[0]["reason"].(string), "accepts no credential") {
		t.Fatalf("events %v", evs)
	}
	if len(d.seen()) != 0 {
		t.Fatal("reached")
	}
}

// A reload takes a token away at once.
func TestBearerReload(t *testing.T) {
	tok, digest, _ := NewToken()
	dir := t.TempDir()
	p := &livePolicy{}
	p.e.Store(loadPolicy(t, dir, "gateway:\n  tokens:\n    - {agent: coder, sha256: "+digest+"}\n"))
	d := startDoor(t, Options{Policy: p}, nil)
	if got := d.call(t, nil, "Bearer "+tok); got.status != http.StatusOK {
		t.Fatalf("before the reload: %d", got.status)
	}
	other, otherDigest, _ := NewToken()
	p.e.Store(loadPolicy(t, dir, "gateway:\n  tokens:\n    - {agent: coder, sha256: "+otherDigest+"}\n"))
	if got := d.call(t, nil, "Bearer "+tok); got.status != http.StatusUnauthorized {
		t.Fatalf("the removed token after the reload: %d", got.status)
	}
	if got := d.call(t, nil, "Bearer "+other); got.status != http.StatusOK {
		t.Fatalf("the new token: %d", got.status)
	}
	if n := len(d.seen()); n != 2 {
		t.Fatalf("reached %d times, want 2", n)
	}
}
