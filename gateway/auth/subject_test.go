package auth

import (
	"fmt"
	"strings"
	"testing"
)

// The identity provider's token that proved an agent is its Subject, for
// a token_exchange binding to exchange (the gateway's upstream requests
// carry no Authorization of the agent's); a gateway token is the
// gateway's alone and is no subject. Neither is ever printed.
func TestIdentitySubject(t *testing.T) {
	p := startIDP(t, nil)
	tok, digest, _ := NewToken()
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "  tokens:\n    - {agent: coder, sha256: "+digest+"}\n")))
	d := startDoor(t, Options{Policy: pol, Client: plainClient()}, nil)
	jwt, _ := p.login(t, nil, "openid")
	for i, c := range []struct{ cred, subject string }{{jwt, jwt}, {tok, ""}, {jwt, jwt}} { // the third: a verified JWT from the cache
		if a := d.call(t, nil, "Bearer "+c.cred); a.status != 200 {
			t.Fatalf("call %d: %d %s", i, a.status, a.body)
		}
		seen := d.seen()
		id := seen[len(seen)-1]
		if id.Subject() != c.subject {
			t.Errorf("call %d (%s): subject of %d bytes, want %d", i, id.Method, len(id.Subject()), len(c.subject))
		}
		for _, s := range []string{fmt.Sprint(id), fmt.Sprintf("%+v", id), fmt.Sprintf("%v", &id)} {
			if strings.Contains(s, jwt) {
				t.Errorf("the identity prints its token: %q", s)
			}
		}
	}
}
