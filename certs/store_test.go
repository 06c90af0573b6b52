package certs

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInitCreatesCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "agentg")
	ca, err := Init(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	modes := []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{filepath.Join(dir, KeyFile), 0o600},
		{filepath.Join(dir, CertFile), 0o644},
	}
	for _, m := range modes {
		fi, err := os.Stat(m.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != m.want {
			t.Errorf("%s: mode %v, want %v", m.path, fi.Mode(), m.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want ca.crt and ca.key only", len(entries))
	}

	c := ca.Certificate()
	checks := []struct {
		name string
		ok   bool
	}{
		{"CN", c.Subject.CommonName == "agentg CA"},
		{"O", len(c.Subject.Organization) == 1 && c.Subject.Organization[0] == "agentg"},
		{"IsCA", c.IsCA && c.BasicConstraintsValid},
		{"MaxPathLen 0", c.MaxPathLen == 0 && c.MaxPathLenZero},
		{"KeyUsage", c.KeyUsage == x509.KeyUsageCertSign|x509.KeyUsageCRLSign},
		{"P-256", c.PublicKeyAlgorithm == x509.ECDSA && c.PublicKey.(*ecdsa.PublicKey).Curve.Params().Name == "P-256"},
		{"10 years", c.NotAfter.Sub(time.Now()) > 9*365*24*time.Hour && c.NotAfter.Sub(time.Now()) <= 3651*24*time.Hour},
		{"self-signed", c.CheckSignatureFrom(c) == nil},
		{"chain", len(ca.Chain()) == 1},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("CA certificate: %s check failed", ck.name)
		}
	}

	loaded, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Fingerprint() != ca.Fingerprint() {
		t.Errorf("loaded fingerprint %s != created %s", loaded.Fingerprint(), ca.Fingerprint())
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	first, err := Init(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		remove  string // file removed before the second Init
		force   bool
		wantErr bool
	}{
		{name: "both exist", wantErr: true},
		{name: "only key exists", remove: CertFile, wantErr: true},
		{name: "force replaces", force: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.remove != "" {
				cert, _ := os.ReadFile(filepath.Join(dir, tc.remove))
				os.Remove(filepath.Join(dir, tc.remove))
				t.Cleanup(func() { writeFile(t, filepath.Join(dir, tc.remove), cert, 0o644) })
			}
			ca, err := Init(dir, tc.force)
			if tc.wantErr {
				if err == nil || !errors.Is(err, fs.ErrExist) {
					t.Fatalf("Init without force: err %v, want fs.ErrExist", err)
				}
				loaded, err := LoadDir(dir)
				if tc.remove == "" && (err != nil || loaded.Fingerprint() != first.Fingerprint()) {
					t.Fatalf("existing CA changed: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ca.Fingerprint() == first.Fingerprint() {
				t.Fatal("force did not create a new CA")
			}
			fi, _ := os.Stat(filepath.Join(dir, KeyFile))
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("replaced key mode %v", fi.Mode())
			}
		})
	}
}

func TestLoadDirErrors(t *testing.T) {
	good := makeCert(t, certSpec{cn: "good", isCA: true})
	other := makeCert(t, certSpec{cn: "other", isCA: true})
	expired := makeCert(t, certSpec{cn: "old", isCA: true, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	notCA := makeCert(t, certSpec{cn: "leafy", keyUsage: x509.KeyUsageDigitalSignature})

	for _, tc := range []struct {
		name     string
		dir      func(t *testing.T) string
		notExist bool
		contains []string
	}{
		{
			name:     "missing dir",
			dir:      func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			notExist: true,
		},
		{
			name:     "missing key",
			dir:      func(t *testing.T) string { return writeDir(t, certsPEM(good.cert), nil, 0) },
			notExist: true,
			contains: []string{KeyFile},
		},
		{
			name: "key readable by others",
			dir: func(t *testing.T) string {
				return writeDir(t, certsPEM(good.cert), keyPEM(t, good.key), 0o644)
			},
			contains: []string{KeyFile, "0644", "chmod 600 "},
		},
		{
			name: "key readable by group",
			dir: func(t *testing.T) string {
				return writeDir(t, certsPEM(good.cert), keyPEM(t, good.key), 0o640)
			},
			contains: []string{"0640", "chmod 600"},
		},
		{
			name: "corrupt cert",
			dir: func(t *testing.T) string {
				return writeDir(t, []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"), keyPEM(t, good.key), 0o600)
			},
			contains: []string{CertFile},
		},
		{
			name:     "corrupt key",
			dir:      func(t *testing.T) string { return writeDir(t, certsPEM(good.cert), []byte("garbage"), 0o600) },
			contains: []string{KeyFile},
		},
		{
			name:     "mismatched key",
			dir:      func(t *testing.T) string { return writeDir(t, certsPEM(good.cert), keyPEM(t, other.key), 0o600) },
			contains: []string{"does not match"},
		},
		{
			name:     "expired",
			dir:      func(t *testing.T) string { return writeDir(t, certsPEM(expired.cert), keyPEM(t, expired.key), 0o600) },
			contains: []string{"expired"},
		},
		{
			name:     "not a CA",
			dir:      func(t *testing.T) string { return writeDir(t, certsPEM(notCA.cert), keyPEM(t, notCA.key), 0o600) },
			contains: []string{"not a CA"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadDir(tc.dir(t))
			if err == nil {
				t.Fatalf("LoadDir succeeded (%s), want error", ca.Certificate().Subject)
			}
			t.Log(err)
			if got := errors.Is(err, fs.ErrNotExist); got != tc.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v (err: %v)", got, tc.notExist, err)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestLoadDirAcceptsValidExternalFiles(t *testing.T) {
	good := makeCert(t, certSpec{cn: "hand made", isCA: true})
	ca, err := LoadDir(writeDir(t, certsPEM(good.cert), keyPEM(t, good.key), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Certificate().Equal(good.cert) {
		t.Fatal("loaded a different certificate")
	}
}

func TestLoadOrInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agentg")
	ca1, created, err := LoadOrInit(dir)
	if err != nil || !created {
		t.Fatalf("first LoadOrInit: created=%v err=%v", created, err)
	}
	ca2, created, err := LoadOrInit(dir)
	if err != nil || created {
		t.Fatalf("second LoadOrInit: created=%v err=%v", created, err)
	}
	if ca1.Fingerprint() != ca2.Fingerprint() {
		t.Fatal("second LoadOrInit returned a different CA")
	}
	// A broken store is an error, never silently replaced.
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, _, err := LoadOrInit(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadOrInit with 0644 key: %v", err)
	}
	// Half a CA is an error that names the missing file and the way out,
	// never replaced.
	crt, _ := os.ReadFile(filepath.Join(dir, CertFile))
	os.Remove(filepath.Join(dir, KeyFile))
	if _, _, err := LoadOrInit(dir); err == nil || !strings.Contains(err.Error(), "its key "+filepath.Join(dir, KeyFile)+" is missing") || !strings.Contains(err.Error(), "agentg ca init --force") {
		t.Fatalf("LoadOrInit without the key: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, CertFile)); string(got) != string(crt) {
		t.Fatal("LoadOrInit replaced a CA whose key was missing")
	}
	os.Remove(filepath.Join(dir, CertFile))
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("key"), 0o600)
	if _, _, err := LoadOrInit(dir); err == nil || !strings.Contains(err.Error(), "its certificate "+filepath.Join(dir, CertFile)+" is missing") {
		t.Fatalf("LoadOrInit without the certificate: %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	for _, tc := range []struct {
		name, xdg, home, want string
	}{
		{"xdg", "/xdg/data", "/home/u", "/xdg/data/agentg"},
		{"home", "", "/home/u", "/home/u/.local/share/agentg"},
		{"relative xdg ignored", "rel", "/home/u", "/home/u/.local/share/agentg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			if got := DefaultDir(); got != tc.want {
				t.Errorf("DefaultDir() = %q, want %q", got, tc.want)
			}
		})
	}
}
