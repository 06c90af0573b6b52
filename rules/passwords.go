package rules

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/agentg/agentg/internal/lru"
)

// Agents' passwords: written in plain text, or as a hash (bcrypt, or
// argon2id as a PHC string) that `agentg passwd` prints, in the policy or
// in a file (password_file) read at load.
//
// A hash is recognised by its prefix: "$2a$", "$2b$", "$2y$" (bcrypt) and
// "$argon2id$" (argon2id). A value with such a prefix that does not parse
// is a load error, never taken as a plain password that happens to start
// with "$": a typo in a pasted hash must not turn the hash itself into the
// password. "$argon2i$" and "$argon2d$" are refused by name.
//
// Verifying a hash costs tens of milliseconds of CPU (that is its point),
// and every CONNECT and every plain request proves its agent, so the cost
// is paid once per load, not per request (passwordCache):
//
//   - a verified (agent, password) pair is remembered in a bounded LRU,
//     keyed by HMAC-SHA256 under a random key made at load, so the cache
//     holds no password and a client cannot aim at an entry. (Whoever can
//     read agentg's memory could test guesses against these keys at HMAC
//     speed; they could as well read passwords from requests in flight,
//     and are outside what agentg protects against: README, Threat
//     model.)
//   - a refused pair is remembered too (a second LRU), so a client that
//     retries the same wrong password (a misconfigured agent in a loop)
//     costs one hash, not one per attempt;
//   - hashes are verified at most verifyConcurrency at a time; a flood of
//     distinct wrong passwords queues behind that bound instead of taking
//     every core from the traffic agentg forwards, and agents whose
//     password is already verified are answered from the cache without
//     waiting. A claim that waits maxPasswordWait for its turn is refused
//     (407, "try again"), never let through and never queued without end.
//
// A reload makes new caches (and a new key): a changed hash is verified
// afresh, and what the old policy accepted is forgotten.

type passwordKind uint8

const (
	pwPlain passwordKind = iota + 1
	pwBcrypt
	pwArgon2id
)

// Bounds on the cost a policy may ask of each verification: a hash from
// elsewhere with absurd parameters must not stall or exhaust agentg.
const (
	maxBcryptCost   = 16
	maxArgonMemory  = 1 << 20 // KiB: 1 GiB
	maxArgonTime    = 64
	minArgonSalt    = 8
	minArgonKey     = 16
	maxArgonKey     = 128
	argonVersionPHC = argon2.Version
	// maxBcryptPassword is what bcrypt reads of a password.
	maxBcryptPassword = 72
)

// password is one agent's password as the policy gives it.
type password struct {
	kind  passwordKind
	plain [32]byte // pwPlain: SHA-256 of the password, compared in constant time
	hash  []byte   // pwBcrypt: the hash as written
	// pwArgon2id
	mem, time uint32
	threads   uint8
	salt, key []byte
}

// isPasswordHash reports whether s claims to be a hash this package reads
// (or refuses by name): it must then parse.
func isPasswordHash(s string) bool {
	return strings.HasPrefix(s, "$argon2") || len(s) >= 3 && s[:2] == "$2" &&
		(s[2] == '$' || len(s) >= 4 && s[3] == '$')
}

// parsePassword reads a policy's password: a bcrypt or argon2id hash, or
// a plain password. Errors name what is wrong, never the value.
func parsePassword(s string) (password, error) {
	switch {
	case s == "":
		return password{}, errors.New("empty password")
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2"):
		return password{}, errors.New("argon2 hash of another variant: only argon2id ($argon2id$...) is accepted")
	case isPasswordHash(s):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return password{}, fmt.Errorf("malformed bcrypt hash: %v", bcryptReason(err))
		}
		if err := bcryptBody(s); err != nil {
			return password{}, fmt.Errorf("malformed bcrypt hash: %v", err)
		}
		if cost > maxBcryptCost {
			return password{}, fmt.Errorf("bcrypt cost %d is above %d: each new client would stall agentg", cost, maxBcryptCost)
		}
		return password{kind: pwBcrypt, hash: []byte(s)}, nil
	}
	return password{kind: pwPlain, plain: sha256.Sum256([]byte(s))}, nil
}

// bcryptReason is bcrypt's error without the hash it may quote.
func bcryptReason(err error) string {
	var ve bcrypt.HashVersionTooNewError
	var pe bcrypt.InvalidHashPrefixError
	var ce bcrypt.InvalidCostError
	switch {
	case errors.Is(err, bcrypt.ErrHashTooShort):
		return "too short"
	case errors.As(err, &ve), errors.As(err, &pe):
		return "unknown version (want $2a$, $2b$ or $2y$)"
	case errors.As(err, &ce):
		return "cost out of range"
	}
	return "does not parse"
}

// bcryptBody checks what bcrypt.Cost does not: the whole hash is 60
// bytes, its last 53 (salt and digest) in bcrypt's base64 alphabet. A
// hash cut short or mangled in pasting would otherwise load and then
// refuse every password.
func bcryptBody(s string) error {
	if len(s) != 60 {
		return fmt.Errorf("%d bytes, want 60", len(s))
	}
	for _, c := range []byte(s[7:]) {
		if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return errors.New("salt and digest are not in bcrypt's base64 alphabet")
		}
	}
	return nil
}

// parseArgon2id reads "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH", salt and
// hash in unpadded standard base64, as the PHC string format writes them.
func parseArgon2id(s string) (password, error) {
	bad := func(why string) (password, error) {
		return password{}, errors.New("malformed argon2id hash: " + why + " (want $argon2id$v=19$m=65536,t=3,p=4$SALT$HASH, as agentg passwd prints)")
	}
	f := strings.Split(s, "$")
	if len(f) != 6 {
		return bad(fmt.Sprintf("%d fields separated by $, want 5", len(f)-1))
	}
	if f[2] != "v="+strconv.Itoa(argonVersionPHC) {
		return bad("version " + strconv.Quote(f[2]) + " is not v=19")
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return bad("parameters are not m=,t=,p=")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return bad("parameters are not m=,t=,p= in that order")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return bad("parameter " + name + " is not a positive number")
		}
		vals[i] = n
	}
	pw := password{kind: pwArgon2id, mem: uint32(vals[0]), time: uint32(vals[1])}
	switch {
	case vals[2] > 255:
		return bad("p is above 255")
	case vals[0] > maxArgonMemory:
		return bad(fmt.Sprintf("m is above %d KiB", maxArgonMemory))
	case vals[0] < 8*vals[2]:
		return bad("m is below 8 KiB per lane")
	case vals[1] > maxArgonTime:
		return bad(fmt.Sprintf("t is above %d", maxArgonTime))
	}
	pw.threads = uint8(vals[2])
	var err error
	if pw.salt, err = base64.RawStdEncoding.Strict().DecodeString(f[4]); err != nil || len(pw.salt) < minArgonSalt {
		return bad(fmt.Sprintf("salt is not unpadded base64 of at least %d bytes", minArgonSalt))
	}
	if pw.key, err = base64.RawStdEncoding.Strict().DecodeString(f[5]); err != nil || len(pw.key) < minArgonKey || len(pw.key) > maxArgonKey {
		return bad(fmt.Sprintf("hash is not unpadded base64 of %d to %d bytes", minArgonKey, maxArgonKey))
	}
	return pw, nil
}

// slow reports whether verifying costs a hash (and so goes through the
// cache).
func (pw *password) slow() bool { return pw.kind == pwBcrypt || pw.kind == pwArgon2id }

// verify compares presented with the password: in constant time for a
// plain one (both sides hashed first, so the length does not leak
// either), by recomputing the hash otherwise.
func (pw *password) verify(presented string) bool {
	switch pw.kind {
	case pwPlain:
		got := sha256.Sum256([]byte(presented))
		return subtle.ConstantTimeCompare(got[:], pw.plain[:]) == 1
	case pwBcrypt:
		// bcrypt reads 72 bytes at most: a longer password would match
		// any other with the same first 72.
		return len(presented) <= maxBcryptPassword && bcrypt.CompareHashAndPassword(pw.hash, []byte(presented)) == nil
	case pwArgon2id:
		got := argon2.IDKey([]byte(presented), pw.salt, pw.time, pw.mem, pw.threads, uint32(len(pw.key)))
		return subtle.ConstantTimeCompare(got, pw.key) == 1
	}
	return false
}

// HashPassword returns the argon2id PHC string of pw with fresh salt and
// agentg's default parameters (RFC 9106's second recommended option:
// t=3, m=64 MiB, p=4), or, with useBcrypt, a bcrypt hash at cost 12;
// `agentg passwd` prints it for the policy.
func HashPassword(pw string, useBcrypt bool) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	if useBcrypt {
		if len(pw) > maxBcryptPassword {
			return "", errors.New("bcrypt reads at most 72 bytes of a password: use argon2id for a longer one")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 12)
		if err != nil {
			return "", fmt.Errorf("bcrypt: %w", err)
		}
		return string(h), nil
	}
	return argon2idHash(pw, 3, 64*1024, 4)
}

// argon2idHash is the PHC string of pw under the given parameters, with
// 16 bytes of fresh salt and a 32-byte key.
func argon2idHash(pw string, t, m uint32, p uint8) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// passwordCache remembers hash verifications for one load (see the top of
// this file).
type passwordCache struct {
	key  [32]byte // HMAC key, random per load
	good *lru.Cache[struct{}]
	bad  *lru.Cache[struct{}]
	macs sync.Pool     // of hash.Hash: HMAC-SHA256 under key
	sem  chan struct{} // verifications under way
	// maxWait is maxPasswordWait; a test shortens it.
	maxWait time.Duration
	// verify is password.verify; a test wraps it to count verifications
	// and how many run at once.
	verify func(pw *password, presented string) bool
}

// Bounds of the caches: a few entries per agent is all a healthy
// deployment uses; the bad cache is larger since it is what a retry
// loop hits.
const (
	goodPasswordCache = 1024
	badPasswordCache  = 4096
)

// verifyConcurrency is how many hashes may be verified at once: half the
// cores, at least one.
func verifyConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

func newPasswordCache() (*passwordCache, error) {
	c := &passwordCache{good: lru.New[struct{}](goodPasswordCache, nil), bad: lru.New[struct{}](badPasswordCache, nil),
		sem: make(chan struct{}, verifyConcurrency()), maxWait: maxPasswordWait, verify: (*password).verify}
	if _, err := rand.Read(c.key[:]); err != nil {
		return nil, fmt.Errorf("password cache key: %w", err)
	}
	c.macs.New = func() any { return hmac.New(sha256.New, c.key[:]) }
	return c, nil
}

// errPasswordBusy refuses a claim whose hash could not be verified in
// time because others filled the queue.
var errPasswordBusy = errors.New("too many password checks are waiting (a flood of new passwords?); try again")

// maxPasswordWait bounds how long a claim waits for its turn to verify a
// hash: past it the claim is refused (errPasswordBusy), not queued
// without end behind a flood.
const maxPasswordWait = 10 * time.Second

// check verifies presented for agent against pw, from the cache when it
// can; err is errPasswordBusy when the claim waited maxWait for its turn.
func (c *passwordCache) check(agent string, pw *password, presented string) (ok bool, err error) {
	if !pw.slow() {
		return pw.verify(presented), nil
	}
	k := c.cacheKey(agent, presented)
	if hit, found := c.lookup(k); found {
		return hit, nil
	}
	select {
	case c.sem <- struct{}{}:
	default:
		t := time.NewTimer(c.maxWait)
		select {
		case c.sem <- struct{}{}:
			t.Stop()
		case <-t.C:
			return false, errPasswordBusy
		}
	}
	defer func() { <-c.sem }()
	// Another request may have verified the same pair while this one
	// waited.
	if hit, found := c.lookup(k); found {
		return hit, nil
	}
	ok = c.verify(pw, presented)
	if ok {
		c.good.Put(k, struct{}{})
	} else {
		c.bad.Put(k, struct{}{})
	}
	return ok, nil
}

// cacheKey is HMAC-SHA256(key, agent NUL presented): a client that does
// not know the per-load key cannot aim at an entry, and the cache holds
// no password. The HMACs are pooled, so a cached check allocates little
// more than the key string.
func (c *passwordCache) cacheKey(agent, presented string) string {
	h := c.macs.Get().(hash.Hash)
	defer c.macs.Put(h)
	h.Reset()
	var buf [192]byte
	h.Write(append(append(append(buf[:0], agent...), 0), presented...))
	var sum [sha256.Size]byte
	return string(h.Sum(sum[:0]))
}

func (c *passwordCache) lookup(k string) (ok, found bool) {
	if _, hit := c.good.Get(k); hit {
		return true, true
	}
	if _, hit := c.bad.Get(k); hit {
		return false, true
	}
	return false, false
}
