package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentg/agentg/gateway/auth"
	"github.com/agentg/agentg/rules"
)

type fixedPolicy struct{ e *rules.Engine }

func (p fixedPolicy) Engine() *rules.Engine { return p.e }

// The token the command prints opens the gateway as its agent once its
// line is in the policy; the line holds the digest, never the token.
func TestGatewayToken(t *testing.T) {
	for _, tc := range []struct{ name, agent, id string }{{"plain", "coder", ""}, {"odd names", "co:der", "-x"}} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := []string{"gateway", "token", "--agent", tc.agent}
			if tc.id != "" {
				args = append(args, "--id", tc.id)
			}
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var tok, line string
			for _, l := range strings.Split(out.String(), "\n") {
				if s := strings.TrimSpace(l); strings.HasPrefix(s, auth.TokenPrefix) {
					tok = s
				}
				if strings.HasPrefix(l, "    - {") {
					line = l
				}
			}
			if tok == "" || line == "" || strings.Contains(line, tok) {
				t.Fatalf("output:\n%s", out.String())
			}
			dir := t.TempDir()
			p := filepath.Join(dir, "policy.yaml")
			os.WriteFile(p, []byte("gateway:\n  tokens:\n"+line+"\n"), 0o600)
			e, err := rules.Load(p)
			if err != nil {
				t.Fatalf("the printed line does not load: %v\n%s", err, line)
			}
			a, _ := auth.New(auth.Options{Policy: fixedPolicy{e}})
			r := httptest.NewRequest("POST", "/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			id, err := a.Authenticate(r)
			if err != nil || id.Agent != tc.agent || (tc.id != "" && id.Credential != tc.id) {
				t.Fatalf("Authenticate = %+v, %v", id, err)
			}
		})
	}
}

func TestGatewayTokenFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tok")
	var out, errb bytes.Buffer
	if code := run([]string{"gateway", "token", "--agent", "coder", "--token-file", f}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(f)
	if err != nil || !strings.HasPrefix(string(b), auth.TokenPrefix) || strings.Contains(out.String(), strings.TrimSpace(string(b))) {
		t.Fatalf("file %q, %v; output %s", b, err, out.String())
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	// No clobbering an existing file, and bad input is refused.
	for _, args := range [][]string{{"--agent", "coder", "--token-file", f}, {"--agent", "two words"}, {}} {
		if code := run(append([]string{"gateway", "token"}, args...), &out, &errb); code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}
