package certs

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"go.step.sm/crypto/pemutil"
)

func TestTrustEnv(t *testing.T) {
	replacing := []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"}
	adding := []string{"NODE_EXTRA_CA_CERTS", "DENO_CERT"}
	for _, tc := range []struct {
		file, quoted string
		bundle, bq   string // "": no roots were found
	}{
		{"/home/u/.local/share/agentg/ca.crt", "/home/u/.local/share/agentg/ca.crt", "/home/u/.local/share/agentg/ca-bundle.pem", "/home/u/.local/share/agentg/ca-bundle.pem"},
		{"/tmp/my dir/ca.crt", "'/tmp/my dir/ca.crt'", "/tmp/my dir/ca-bundle.pem", "'/tmp/my dir/ca-bundle.pem'"},
		{"/tmp/it's/ca.crt", `'/tmp/it'\''s/ca.crt'`, "", ""},
		{"/tmp/$(rm -rf x)/ca.crt", "'/tmp/$(rm -rf x)/ca.crt'", "/tmp/$(rm -rf x)/b.pem", "'/tmp/$(rm -rf x)/b.pem'"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := TrustEnv(tc.file, tc.bundle)
			want := tc.bq
			if tc.bundle == "" {
				want = tc.quoted
				if !strings.Contains(out, "REPLACE") {
					t.Errorf("missing the warning that the CA alone replaces the roots:\n%s", out)
				}
			}
			for _, v := range replacing {
				if !strings.Contains(out, "\nexport "+v+"="+want+"\n") {
					t.Errorf("missing export of %s=%s:\n%s", v, want, out)
				}
			}
			for _, v := range adding {
				if !strings.Contains(out, "\nexport "+v+"="+want+"\n") {
					t.Errorf("missing export of %s=%s:\n%s", v, want, out)
				}
			}
			if !strings.Contains(out, "#   cp "+tc.quoted+" /usr/local/share/ca-certificates/agentg.crt && update-ca-certificates\n") {
				t.Errorf("missing Debian instructions:\n%s", out)
			}
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !strings.HasPrefix(line, "# ") && !strings.HasPrefix(line, "export ") {
					t.Errorf("line is neither a comment nor an export: %q", line)
				}
			}
		})
	}
}

func TestBundlePEM(t *testing.T) {
	ca := newTestCA(t)
	public := makeCert(t, certSpec{cn: "Some Public Root", isCA: true})
	dir := t.TempDir()
	sys := writeFile(t, filepath.Join(dir, "ca-certificates.crt"), bytes.TrimSuffix(certsPEM(public.cert), []byte("\n")), 0o644)

	b, from, err := ca.bundlePEM([]string{filepath.Join(dir, "missing.pem"), sys})
	if err != nil || from != sys {
		t.Fatal(from, err)
	}
	got, err := pemutil.ParseCertificateBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(public.cert) || !got[1].Equal(ca.Certificate()) {
		t.Fatalf("bundle holds %d certs, want public root then agentg CA", len(got))
	}
	if _, _, err := ca.bundlePEM([]string{filepath.Join(dir, "missing.pem")}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no system bundle: err %v, want fs.ErrNotExist", err)
	}

	// WriteBundle records the roots it was given and uses them again.
	data := t.TempDir()
	p, from, err := ca.WriteBundle(data, sys)
	if err != nil || from != sys || p != filepath.Join(data, BundleFile) {
		t.Fatalf("WriteBundle: %s %s %v", p, from, err)
	}
	if _, from, err = ca.WriteBundle(data, ""); err != nil || from != sys {
		t.Fatalf("WriteBundle again: from %s %v, want the recorded %s", from, err, sys)
	}
}
