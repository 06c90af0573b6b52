package approval

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Tokens bind an approval to the exact call it is about, for a client to
// carry and give back: the requestState of a 2026-07-28 InputRequiredResult
// agentg answers a held call with (the client echoes it on its retry). The
// specification has a server treat requestState as attacker-controlled and
// protect its integrity; a token is an HMAC-SHA256, under a key of the
// broker's (random per process unless Config.TokenKey gives one), over the
// approval id, the agent, the server, the tool, the digest of the
// arguments as sent and the approval's expiry. OpenToken refuses any token
// that was altered, made under another key, or presented after its
// expiry; binding it to the retry (same agent, server, tool, arguments) is
// the caller's, with Binding.Matches.

// TokenPrefix starts every token, so that agentg's requestState is told
// apart from a server's.
const TokenPrefix = "agentg-approval.v1."

// ErrBadToken is a token that does not verify; test with errors.Is.
var ErrBadToken = errors.New("approval token does not verify")

// Binding is what a token binds: one approval of one call.
type Binding struct {
	Approval string
	Agent    string
	Server   string
	Tool     string
	Args     [32]byte // ArgsDigest of the arguments as sent
	Expires  time.Time
}

// ArgsDigest is the digest a Binding holds of a call's arguments (their
// canonical form, as the caller computed it).
func ArgsDigest(canonical []byte) [32]byte {
	return sha256.Sum256(append([]byte("agentg approval args v1\n"), canonical...))
}

// Matches reports whether b binds the call other describes (its Approval
// and Expires are not compared): the same agent, server, tool and
// arguments digest.
func (b Binding) Matches(other Binding) bool {
	return b.Agent == other.Agent && b.Server == other.Server && b.Tool == other.Tool &&
		hmac.Equal(b.Args[:], other.Args[:])
}

// SealToken returns the token of b.
func (br *Broker) SealToken(b Binding) string {
	payload := encodeBinding(b)
	enc := base64.RawURLEncoding
	return TokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(br.mac(payload))
}

// OpenToken verifies a token and returns what it binds; ErrBadToken (with
// why) for a token altered, not agentg's, or expired.
func (br *Broker) OpenToken(tok string) (Binding, error) {
	rest, ok := strings.CutPrefix(tok, TokenPrefix)
	if !ok {
		return Binding{}, fmt.Errorf("%w: not agentg's", ErrBadToken)
	}
	p64, m64, ok := strings.Cut(rest, ".")
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if !ok || err1 != nil || err2 != nil {
		return Binding{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	if !hmac.Equal(mac, br.mac(payload)) {
		return Binding{}, fmt.Errorf("%w: altered, or not made by this agentg", ErrBadToken)
	}
	b, ok := decodeBinding(payload)
	if !ok {
		return Binding{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	if !br.now().Before(b.Expires) {
		return Binding{}, fmt.Errorf("%w: approval %s expired at %s", ErrBadToken, b.Approval, b.Expires.UTC().Format(time.RFC3339))
	}
	return b, nil
}

func (br *Broker) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, br.key)
	h.Write([]byte("agentg approval token v1\n"))
	h.Write(payload)
	return h.Sum(nil)
}

// newTokenKey is a per-process key.
func newTokenKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// encodeBinding writes each field length-prefixed, so that no value can
// pose as another.
func encodeBinding(b Binding) []byte {
	var out []byte
	for _, f := range []string{b.Approval, b.Agent, b.Server, b.Tool, string(b.Args[:])} {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return binary.AppendVarint(out, b.Expires.UnixNano())
}

func decodeBinding(p []byte) (Binding, bool) {
	var f [5]string
	for i := range f {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return Binding{}, false
		}
		f[i], p = string(p[k:k+int(n)]), p[k+int(n):]
	}
	exp, k := binary.Varint(p)
	if k <= 0 || k != len(p) || len(f[4]) != 32 {
		return Binding{}, false
	}
	b := Binding{Approval: f[0], Agent: f[1], Server: f[2], Tool: f[3], Expires: time.Unix(0, exp)}
	copy(b.Args[:], f[4])
	return b, true
}
