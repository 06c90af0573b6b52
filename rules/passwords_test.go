package rules

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Vectors made by other implementations, so that the parser is not only
// shown to read what HashPassword writes: the Argon2 reference
// implementation's test.c (password "password", salt "somesalt") and the
// OpenBSD/John the Ripper bcrypt set ("U*U").
const (
	refArgon2id = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	refBcrypt   = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
)

func cheapBcrypt(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func cheapArgon(t testing.TB, pw string) string {
	t.Helper()
	h, err := argon2idHash(pw, 1, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParsePassword(t *testing.T) {
	tests := []struct {
		name, value    string
		kind           passwordKind
		good, bad, err string
	}{
		{"plain", "s3cret", pwPlain, "s3cret", "s3cre", ""},
		{"plain with a dollar", "$ecret", pwPlain, "$ecret", "ecret", ""},
		{"argon2id reference vector", refArgon2id, pwArgon2id, "password", "Password", ""},
		{"bcrypt reference vector", refBcrypt, pwBcrypt, "U*U", "U*V", ""},
		{"argon2id made here", cheapArgon(t, "horse battery"), pwArgon2id, "horse battery", "horse batter", ""},
		{"bcrypt made here", cheapBcrypt(t, "horse battery"), pwBcrypt, "horse battery", "", ""},
		{"bcrypt, 72 bytes", cheapBcrypt(t, strings.Repeat("a", 72)), pwBcrypt, strings.Repeat("a", 72), strings.Repeat("a", 72) + "b", ""},
		{"bcrypt $2b$", strings.Replace(cheapBcrypt(t, "x"), "$2a$", "$2b$", 1), pwBcrypt, "x", "y", ""},
		{"empty", "", 0, "", "", "empty password"},
		{"argon2i", strings.Replace(refArgon2id, "argon2id", "argon2i", 1), 0, "", "", "only argon2id"},
		{"argon2d", "$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$x", 0, "", "", "only argon2id"},
		{"argon2id cut", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ", 0, "", "", "4 fields"},
		{"argon2id old version", strings.Replace(refArgon2id, "v=19", "v=16", 1), 0, "", "", "is not v=19"},
		{"argon2id no version", "$argon2id$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", 0, "", "", "4 fields"},
		{"argon2id order", strings.Replace(refArgon2id, "m=256,t=2", "t=2,m=256", 1), 0, "", "", "in that order"},
		{"argon2id two params", strings.Replace(refArgon2id, ",p=1", "", 1), 0, "", "", "not m=,t=,p="},
		{"argon2id zero t", strings.Replace(refArgon2id, "t=2", "t=0", 1), 0, "", "", "t= is not a positive"},
		{"argon2id huge m", strings.Replace(refArgon2id, "m=256", "m=4194304", 1), 0, "", "", "m is above"},
		{"argon2id m below lanes", strings.Replace(refArgon2id, "m=256,t=2,p=1", "m=16,t=2,p=4", 1), 0, "", "", "below 8 KiB per lane"},
		{"argon2id huge t", strings.Replace(refArgon2id, "t=2", "t=1000", 1), 0, "", "", "t is above"},
		{"argon2id huge p", strings.Replace(refArgon2id, "p=1", "p=300", 1), 0, "", "", "p is above 255"},
		{"argon2id padded salt", strings.Replace(refArgon2id, "c29tZXNhbHQ", "c29tZXNhbHQ=", 1), 0, "", "", "salt is not"},
		{"argon2id short salt", strings.Replace(refArgon2id, "c29tZXNhbHQ", "c29t", 1), 0, "", "", "salt is not"},
		{"argon2id short hash", strings.Replace(refArgon2id, "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "nf65EOgL", 1), 0, "", "", "hash is not"},
		{"argon2id bad base64", strings.Replace(refArgon2id, "nf65", "n!65", 1), 0, "", "", "hash is not"},
		{"bcrypt cut", refBcrypt[:40], 0, "", "", "malformed bcrypt hash: too short"},
		{"bcrypt mangled", refBcrypt[:59] + "!", 0, "", "", "base64 alphabet"},
		{"bcrypt long", refBcrypt + "x", 0, "", "", "61 bytes"},
		{"bcrypt version", "$3a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", pwPlain, "$3a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "", ""},
		{"bcrypt cost", strings.Replace(refBcrypt, "$05$", "$99$", 1), 0, "", "", "cost out of range"},
		{"bcrypt expensive", strings.Replace(refBcrypt, "$05$", "$20$", 1), 0, "", "", "cost 20 is above 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw, err := parsePassword(tt.value)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if tt.value != "" && strings.Contains(err.Error(), tt.value) {
					t.Fatalf("the error quotes the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pw.kind != tt.kind {
				t.Fatalf("kind %d, want %d", pw.kind, tt.kind)
			}
			if !pw.verify(tt.good) {
				t.Errorf("the right password %q is refused", tt.good)
			}
			if pw.verify(tt.bad) {
				t.Errorf("the wrong password %q is accepted", tt.bad)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	for _, useBcrypt := range []bool{false, true} {
		h, err := HashPassword("correct horse", useBcrypt)
		if err != nil {
			t.Fatal(err)
		}
		pw, err := parsePassword(h)
		if err != nil {
			t.Fatalf("%s does not parse: %v", h, err)
		}
		if want := map[bool]passwordKind{false: pwArgon2id, true: pwBcrypt}[useBcrypt]; pw.kind != want {
			t.Fatalf("bcrypt %v: kind %d", useBcrypt, pw.kind)
		}
		if !pw.verify("correct horse") || pw.verify("correct hors") {
			t.Fatalf("bcrypt %v: %s does not verify as it should", useBcrypt, h)
		}
		if h2, _ := HashPassword("correct horse", useBcrypt); h2 == h {
			t.Fatal("two hashes of one password are equal: no fresh salt")
		}
	}
	if _, err := HashPassword("", false); err == nil {
		t.Error("an empty password was hashed")
	}
	if _, err := HashPassword(strings.Repeat("a", 73), true); err == nil {
		t.Error("bcrypt hashed a password it would cut at 72 bytes")
	}
}

func TestAgentPasswordLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	checkLoadErrors(t, []loadErrorCase{
		{"malformed argon2id", "agents:\n  - name: a\n    password: \"$argon2id$v=19$m=256\"\n", ":3: agent password: malformed argon2id hash"},
		{"malformed bcrypt", "agents:\n  - name: a\n    password: \"$2b$10$abc\"\n", ":3: agent password: malformed bcrypt hash"},
		{"argon2i", "agents:\n  - name: a\n    password: \"" + strings.Replace(refArgon2id, "argon2id", "argon2i", 1) + "\"\n", ":3: agent password: argon2 hash of another variant"},
		{"both keys", "agents:\n  - name: a\n    password: x\n    password_file: /x\n", ":4: an agent has one of password or password_file"},
		{"empty file name", "agents:\n  - name: a\n    password_file: \"\"\n", ":3: empty password_file"},
		{"missing file", "agents:\n  - name: a\n    cidrs: [10.0.0.0/8]\n    password_file: " + missing + "\n", ":4: agent a's password_file: stat " + missing + ": no such file or directory"},
		{"unknown key", "agents:\n  - name: a\n    pasword: x\n", ":3: unknown agent key \"pasword\" (want name, password, password_file, cidrs)"},
	})
	// A file with a malformed hash, with two lines, too large, empty; one
	// others may read or write (whoever can write it can be the agent).
	for _, tt := range []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"malformed", "$argon2id$v=19$m=1\n", 0o600, "malformed argon2id hash"},
		{"two lines", "a\nb\n", 0o600, "holds more than one line"},
		{"large", strings.Repeat("a", 5000), 0o600, "larger than 4096 bytes"},
		{"empty", "\n", 0o600, "empty password"},
		{"world-writable", "pw-1234\n", 0o666, "must not be readable or writable by others (chmod 660"},
		{"world-readable", cheapArgon(t, "x") + "\n", 0o644, "must not be readable or writable by others (chmod 640"},
	} {
		t.Run("file "+tt.name, func(t *testing.T) {
			path := writePolicy(t, "agents:\n  - name: a\n    password_file: pw\n", nil)
			pwFile := filepath.Join(filepath.Dir(path), "pw")
			if err := os.WriteFile(pwFile, []byte(tt.body), tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(pwFile, tt.mode) // whatever the umask did
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), "policy.yaml:3: agent a's password_file") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want policy.yaml:3 and %q", err, tt.want)
			}
			if len(tt.body) > 2 && strings.Contains(err.Error(), strings.TrimSpace(tt.body)) {
				t.Fatalf("the error quotes the file: %v", err)
			}
		})
	}
}

func TestAgentHashedPasswords(t *testing.T) {
	src := netip.MustParseAddr("127.0.0.1")
	files := map[string]string{
		"argon.pw": cheapArgon(t, "from-a-file") + "\n",
		"plain.pw": "plain-in-file\r\n",
	}
	policy := "agents:\n" +
		"  - name: argon\n    password: \"" + cheapArgon(t, "argon-pass") + "\"\n" +
		"  - name: bc\n    password: '" + cheapBcrypt(t, "bc-pass") + "'\n" +
		"  - name: viafile\n    password_file: argon.pw\n" +
		"  - name: plainfile\n    password_file: plain.pw\n" +
		"  - name: plain\n    password: plain-pass\n"
	path := writePolicy(t, policy, files)
	for name := range files {
		os.Chmod(filepath.Join(filepath.Dir(path), name), 0o600) // a provided secret: not for others
	}
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ user, pass, want string }{
		{"argon", "argon-pass", "argon"},
		{"argon", "argon-pas", ""},
		{"argon", "", ""},
		{"bc", "bc-pass", "bc"},
		{"bc", "bc-pas", ""},
		{"viafile", "from-a-file", "viafile"},
		{"viafile", "from-a-file\n", ""},
		{"plainfile", "plain-in-file", "plainfile"},
		{"plainfile", "plain-in-file\r", ""},
		{"plain", "plain-pass", "plain"},
		{"plain", "argon-pass", ""},
	}
	for round := range 2 { // the second round is answered from the cache
		for _, tt := range tests {
			got, err := e.Agent(Claim{User: tt.user, Password: tt.pass, Src: src})
			if got != tt.want || (tt.want == "") != (err != nil) {
				t.Errorf("round %d: %s/%q: %q, %v; want %q", round, tt.user, tt.pass, got, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tt.pass) && tt.pass != "" {
				t.Errorf("the error quotes the presented password: %v", err)
			}
		}
	}
	// The password file is watched with the policy.
	if fs := e.Files(); !containsSuffix(fs, "argon.pw") || !containsSuffix(fs, "plain.pw") {
		t.Errorf("Files() = %v, want the password files", fs)
	}
	// A reload reads the file again: the old password is refused.
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "argon.pw"), []byte(cheapArgon(t, "rotated")), 0o600); err != nil {
		t.Fatal(err)
	}
	e2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Agent(Claim{User: "viafile", Password: "from-a-file", Src: src}); err == nil {
		t.Error("the old password is accepted after the file changed")
	}
	if got, err := e2.Agent(Claim{User: "viafile", Password: "rotated", Src: src}); got != "viafile" || err != nil {
		t.Errorf("the new password: %q, %v", got, err)
	}

	// agentg check warns about the plain ones only, at their lines.
	var warned []string
	for _, w := range e.Warnings() {
		if strings.Contains(w.Text, "plain") {
			warned = append(warned, w.String())
		}
	}
	if len(warned) != 2 || !strings.Contains(warned[0], "policy.yaml:9: agent plainfile's password_file") ||
		!strings.Contains(warned[1], "policy.yaml:11: agent plain's password is written in plain text") {
		t.Errorf("plain-password warnings: %q", warned)
	}
	for _, w := range warned {
		if strings.Contains(w, "plain-pass") || strings.Contains(w, "plain-in-file") {
			t.Errorf("a warning quotes a password: %s", w)
		}
	}
}

func containsSuffix(list []string, suffix string) bool {
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// The cache spares the hash: the same right or wrong password is verified
// once, however many requests present it, concurrently or not; a new
// wrong one costs one more.
func TestPasswordCache(t *testing.T) {
	c, err := newPasswordCache()
	if err != nil {
		t.Fatal(err)
	}
	var n, running, most atomic.Int64
	c.verify = func(pw *password, presented string) bool {
		n.Add(1)
		r := running.Add(1)
		for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
		}
		defer running.Add(-1)
		time.Sleep(5 * time.Millisecond) // long enough for the others to pile up
		return pw.verify(presented)
	}
	pw, err := parsePassword(cheapArgon(t, "right"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(2)
		go func() { defer wg.Done(); c.check("a", &pw, "right") }()
		go func() { defer wg.Done(); c.check("a", &pw, "wrong") }()
	}
	wg.Wait()
	check := func(agent, presented string) bool {
		t.Helper()
		ok, err := c.check(agent, &pw, presented)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !check("a", "right") || check("a", "wrong") {
		t.Fatal("the cache changed an answer")
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("%d hash verifications for one right and one wrong password, want 2", got)
	}
	// The agent is part of the key: the same password for another agent
	// is verified anew.
	c.check("b", &pw, "right")
	c.check("a", &pw, "wrong2")
	if got := n.Load(); got != 4 {
		t.Fatalf("%d verifications, want 4", got)
	}
	// A flood of distinct wrong passwords verifies at most
	// verifyConcurrency at a time.
	for i := range 40 {
		wg.Add(1)
		go func() { defer wg.Done(); c.check("a", &pw, fmt.Sprintf("flood-%d", i)) }()
	}
	wg.Wait()
	if got := most.Load(); got > int64(verifyConcurrency()) {
		t.Fatalf("%d hash verifications ran at once, the bound is %d", got, verifyConcurrency())
	}
	if got := n.Load(); got != 44 {
		t.Fatalf("%d verifications after the flood, want 44", got)
	}
	// A claim that cannot get its turn in time is refused, never let
	// through; a cached one is still answered at once.
	c.maxWait = 20 * time.Millisecond
	for range cap(c.sem) {
		c.sem <- struct{}{}
	}
	if ok, err := c.check("a", &pw, "right"); !ok || err != nil {
		t.Fatalf("a cached password while the queue is full: %v %v", ok, err)
	}
	if ok, err := c.check("a", &pw, "new-one"); ok || err != errPasswordBusy {
		t.Fatalf("an uncached password while the queue is full: %v %v, want errPasswordBusy", ok, err)
	}
	for range cap(c.sem) {
		<-c.sem
	}
	// A plain password never reaches the cache.
	plain, _ := parsePassword("p")
	c.check("a", &plain, "p")
	if got := n.Load(); got != 44 {
		t.Fatalf("a plain password was counted as a hash verification")
	}
}

func BenchmarkAgentHashedCached(b *testing.B) {
	h, err := argon2idHash("pw", 3, 64*1024, 4)
	if err != nil {
		b.Fatal(err)
	}
	e := mustLoad(b, "agents:\n  - name: a\n    password: \""+h+"\"\n", nil)
	c := Claim{User: "a", Password: "pw", Src: netip.MustParseAddr("127.0.0.1")}
	if _, err := e.Agent(c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Agent(c); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParsePassword: any value parses or is refused, never panics; a
// refusal never quotes the value; what parses verifies without panicking,
// and a value that claims to be a hash never loads as a plain password.
func FuzzParsePassword(f *testing.F) {
	for _, s := range []string{refArgon2id, refBcrypt, "plain", "$2b$", "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "$", "$2$05$"} {
		f.Add(s, "password")
	}
	f.Fuzz(func(t *testing.T, value, presented string) {
		pw, err := parsePassword(value)
		if err != nil {
			if len(value) >= 8 && strings.Contains(err.Error(), value) {
				t.Fatalf("the error quotes the value: %v", err)
			}
			return
		}
		if isPasswordHash(value) && pw.kind == pwPlain {
			t.Fatalf("%q claims to be a hash but loaded as a plain password", value)
		}
		if pw.kind == pwArgon2id && (pw.mem > 4096 || pw.time > 4) {
			return // valid, but too slow to verify in a fuzz loop
		}
		if pw.kind == pwBcrypt {
			return // the cost alone makes each call slow
		}
		pw.verify(presented)
		if pw.kind == pwPlain && !pw.verify(value) {
			t.Fatalf("a plain password does not verify against itself")
		}
	})
}
