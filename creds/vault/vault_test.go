package vault

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openT(t *testing.T, dir string, k KeySource) *Vault {
	t.Helper()
	v, err := Open(dir, k)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(t *testing.T, dir string) KeySource
	}{
		{"file key", func(*testing.T, string) KeySource { return FileKey() }},
		{"softkms envelope", func(t *testing.T, dir string) KeySource { return KMS("softkms:path=" + rsaKey(t, dir)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			key := tc.key(t, filepath.Dir(dir))
			v := openT(t, dir, key)
			secret := []byte("tok-" + rand.Text())
			if err := v.Put("oauth/jira/access", secret); err != nil {
				t.Fatal(err)
			}
			if err := v.Put("oauth/jira/refresh", []byte("r")); err != nil {
				t.Fatal(err)
			}
			// A second Open with the same key reads what the first wrote.
			v2 := openT(t, dir, key)
			got, ok, err := v2.Get("oauth/jira/access")
			if err != nil || !ok || !bytes.Equal(got, secret) {
				t.Fatalf("Get = %q, %v, %v", got, ok, err)
			}
			if n := v2.Names(); strings.Join(n, ",") != "oauth/jira/access,oauth/jira/refresh" {
				t.Fatalf("Names = %v", n)
			}
			if _, ok, err := v2.Get("absent"); ok || err != nil {
				t.Fatalf("absent: %v %v", ok, err)
			}
			if err := v2.Delete("oauth/jira/refresh"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := v2.Get("oauth/jira/refresh"); ok {
				t.Fatal("deleted record still there")
			}
			if err := v2.Delete("oauth/jira/refresh"); err != nil {
				t.Fatalf("second delete: %v", err)
			}
			// Nothing in the data directory holds the value in plain text,
			// and the key file and records are 0600.
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, _ := os.ReadFile(p)
				if bytes.Contains(b, secret) {
					t.Errorf("%s holds the value in plain text", p)
				}
				if fi, _ := d.Info(); fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v", p, fi.Mode())
				}
				return nil
			})
		})
	}
}

// rsaKey writes an RSA key (PKCS#8 PEM, mode 0600) for softkms.
func rsaKey(t *testing.T, dir string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	p := filepath.Join(dir, "kms-"+rand.Text()[:6]+".pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRefused(t *testing.T) {
	dir := t.TempDir()
	v := openT(t, dir, FileKey())
	if err := v.Put("a", []byte("value-a")); err != nil {
		t.Fatal(err)
	}
	if err := v.Put("b", []byte("value-b")); err != nil {
		t.Fatal(err)
	}
	rec := func(name string) string { return v.path(name) }
	read := func(name string) []byte { b, _ := os.ReadFile(rec(name)); return b }
	write := func(name string, b []byte) {
		if err := os.WriteFile(rec(name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(rec(name), 0o600)
	}
	orig := read("a")
	for _, tc := range []struct {
		name   string
		change func()
		want   error
		text   string
	}{
		{"flipped byte", func() { b := bytes.Clone(orig); b[len(b)-3] ^= 1; write("a", b) }, ErrTampered, ""},
		{"flipped nonce", func() { b := bytes.Clone(orig); b[len(magic)+keyIDLen] ^= 1; write("a", b) }, ErrTampered, ""},
		{"swapped record", func() { write("a", read("b")) }, ErrTampered, ""},
		{"truncated", func() { write("a", orig[:header+3]) }, ErrNotRecord, ""},
		{"not a record", func() { write("a", []byte(strings.Repeat("x", 100))) }, ErrNotRecord, ""},
		{"empty", func() { write("a", nil) }, ErrNotRecord, ""},
		{"world-readable record", func() { write("a", orig); os.Chmod(rec("a"), 0o644) }, nil, "mode 0644"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			defer write("a", orig)
			got, ok, err := v.Get("a")
			if err == nil || ok || got != nil {
				t.Fatalf("Get = %q, %v, %v; want an error", got, ok, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) || strings.Contains(err.Error(), "value-") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if got, ok, err := v.Get("a"); err != nil || !ok || string(got) != "value-a" {
		t.Fatalf("restored: %q %v %v", got, ok, err)
	}
}

func TestWrongKey(t *testing.T) {
	dir := t.TempDir()
	v := openT(t, dir, FileKey())
	if err := v.Put("a", []byte("value-a")); err != nil {
		t.Fatal(err)
	}
	// Another key in place of the first: its records are refused as
	// sealed under another key.
	os.Remove(filepath.Join(dir, KeyFile))
	v2 := openT(t, dir, FileKey())
	if _, _, err := v2.Get("a"); !errors.Is(err, ErrOtherKey) {
		t.Fatalf("err = %v, want ErrOtherKey", err)
	}
	// A wrapped key that another KMS key wrapped does not unwrap.
	kdir := t.TempDir()
	if _, err := Open(kdir, KMS("softkms:path="+rsaKey(t, t.TempDir()))); err != nil {
		t.Fatal(err)
	}
	_, err := Open(kdir, KMS("softkms:path="+rsaKey(t, t.TempDir())))
	if err == nil || !strings.Contains(err.Error(), "does not unwrap") {
		t.Fatalf("other KMS key: %v", err)
	}
}

func TestKeyFileRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"world-readable", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, KeyFile), 0o644) }, "mode 0644"},
		{"group-readable", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, KeyFile), 0o640) }, "mode 0640"},
		{"short", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600) }, "5 bytes"},
		{"a directory", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, KeyFile))
			os.Mkdir(filepath.Join(dir, KeyFile), 0o700)
		}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			openT(t, dir, FileKey())
			tc.setup(t, dir)
			_, err := Open(dir, FileKey())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestKMSRefused(t *testing.T) {
	dir := t.TempDir()
	kp := rsaKey(t, dir)
	os.Chmod(kp, 0o644)
	if _, err := Open(t.TempDir(), KMS("softkms:path="+kp)); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Fatalf("world-readable KMS key: %v", err)
	}
	if _, err := Open(t.TempDir(), KMS("softkms:path="+filepath.Join(dir, "missing.pem"))); err == nil {
		t.Fatal("missing KMS key opened")
	}
	if _, err := ParseKeySource("nokms"); err == nil {
		t.Fatal("bad key source accepted")
	}
	_, err := Open(t.TempDir(), KMS("nosuchkms:pin-value=1234;key=x"))
	if err == nil || strings.Contains(err.Error(), "1234") {
		t.Fatalf("unknown KMS: %v", err)
	}
}

func TestNames(t *testing.T) {
	v := openT(t, t.TempDir(), FileKey())
	for _, bad := range []string{"", "has space", "tab\t", strings.Repeat("x", MaxName+1), "é"} {
		if err := v.Put(bad, []byte("x")); err == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
	}
	if err := v.Put("x", make([]byte, MaxValue+1)); err == nil {
		t.Error("oversized value accepted")
	}
	// A name that is a path stays inside the vault directory.
	if err := v.Put("../../escape", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n := v.Names(); len(n) != 1 || n[0] != "../../escape" {
		t.Fatalf("Names = %v", n)
	}
	os.WriteFile(filepath.Join(v.dir, "stray"), nil, 0o600)
	if n := v.Names(); len(n) != 1 {
		t.Fatalf("Names with a stray file = %v", n)
	}
}

func FuzzRecord(f *testing.F) {
	dir := f.TempDir()
	v, err := Open(dir, FileKey())
	if err != nil {
		f.Fatal(err)
	}
	good, _ := v.seal("n", []byte("value"))
	f.Add(good)
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		if len(rec.nonce) != nonceLen || len(rec.keyID) != keyIDLen || len(rec.sealed) < overhead {
			t.Fatalf("decoded framing wrong: %d %d %d", len(rec.nonce), len(rec.keyID), len(rec.sealed))
		}
		val, err := v.open("n", b)
		if err == nil && !bytes.Equal(b, good) && string(val) != "value" {
			// Only a record this vault sealed under "n" may open.
			t.Fatalf("forged record opened: %q", val)
		}
	})
}
