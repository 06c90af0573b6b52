package approval

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A token opens to what it bound, and only then: any altered byte, another
// broker's key, or a token past its expiry does not verify.
func TestToken(t *testing.T) {
	b := newBroker(t, StoreOptions{})
	bind := Binding{Approval: "ap-1", Agent: "a", Server: "srv", Tool: "echo",
		Args: ArgsDigest([]byte(`{"x":1}`)), Expires: time.Now().Add(time.Minute)}
	tok := b.SealToken(bind)
	if !strings.HasPrefix(tok, TokenPrefix) {
		t.Fatalf("token %q lacks the prefix", tok)
	}
	got, err := b.OpenToken(tok)
	if err != nil || got.Approval != "ap-1" || !got.Matches(bind) || !got.Expires.Equal(bind.Expires) {
		t.Fatalf("open: %+v %v", got, err)
	}
	other := newBroker(t, StoreOptions{})
	expired := bind
	expired.Expires = time.Now().Add(-time.Second)
	flip := []byte(tok)
	flip[len(TokenPrefix)+3] ^= 1
	for name, bad := range map[string]string{
		"altered payload": string(flip),
		"altered mac":     tok[:len(tok)-2] + "AA",
		"no mac":          strings.SplitN(tok, ".", 3)[0] + "." + strings.SplitN(tok, ".", 3)[1] + "." + strings.Split(tok[len(TokenPrefix):], ".")[0],
		"not agentg's":    "eyJsb2NhdGlvbiI6Ik5ldyBZb3JrIn0",
		"expired":         b.SealToken(expired),
		"empty":           "",
	} {
		if _, err := b.OpenToken(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v, want ErrBadToken", name, err)
		}
	}
	if _, err := other.OpenToken(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("another broker's key: %v, want ErrBadToken", err)
	}
	for name, c := range map[string]Binding{
		"agent": {Agent: "b", Server: "srv", Tool: "echo", Args: bind.Args},
		"tool":  {Agent: "a", Server: "srv", Tool: "wipe", Args: bind.Args},
		"args":  {Agent: "a", Server: "srv", Tool: "echo", Args: ArgsDigest([]byte(`{"x":2}`))},
	} {
		if bind.Matches(c) {
			t.Errorf("other %s matches", name)
		}
	}
}

// FuzzToken: a client's requestState is hostile input. Whatever it is,
// OpenToken never panics and never opens anything this broker did not
// seal; and any binding seals and opens to itself.
func FuzzToken(f *testing.F) {
	b := newBroker(f, StoreOptions{})
	f.Add("", "a", "srv", "echo", []byte(`{}`))
	f.Add(TokenPrefix+"AAAA.BBBB", "", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, tok, agent, server, tool string, args []byte) {
		if _, err := b.OpenToken(tok); err == nil {
			t.Fatalf("opened a token it never sealed: %q", tok)
		}
		bind := Binding{Approval: tok, Agent: agent, Server: server, Tool: tool,
			Args: ArgsDigest(args), Expires: time.Now().Add(time.Minute)}
		got, err := b.OpenToken(b.SealToken(bind))
		if err != nil || !got.Matches(bind) || got.Approval != tok {
			t.Fatalf("round trip of %+v: %+v %v", bind, got, err)
		}
	})
}
