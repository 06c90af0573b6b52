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
	for _, tc := range []struct {
		file, quoted string
	}{
		{"/home/u/.local/share/agentg/ca.crt", "/home/u/.local/share/agentg/ca.crt"},
		{"/tmp/my dir/ca.crt", "'/tmp/my dir/ca.crt'"},
		{"/tmp/it's/ca.crt", `'/tmp/it'\''s/ca.crt'`},
		{"/tmp/$(rm -rf x)/ca.crt", "'/tmp/$(rm -rf x)/ca.crt'"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := TrustEnv(tc.file)
			for _, v := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "DENO_CERT"} {
				if !strings.Contains(out, "\nexport "+v+"="+tc.quoted+"\n") {
					t.Errorf("missing export of %s:\n%s", v, out)
				}
			}
			if !strings.Contains(out, "#   cp "+tc.quoted+" /usr/local/share/ca-certificates/agentg.crt && update-ca-certificates\n") {
				t.Errorf("missing Debian instructions:\n%s", out)
			}
			if !strings.Contains(out, "REPLACE") || !strings.Contains(out, "bundle") {
				t.Errorf("missing the warning that SSL_CERT_FILE replaces the roots:\n%s", out)
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

	b, err := ca.bundlePEM([]string{filepath.Join(dir, "missing.pem"), sys})
	if err != nil {
		t.Fatal(err)
	}
	got, err := pemutil.ParseCertificateBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(public.cert) || !got[1].Equal(ca.Certificate()) {
		t.Fatalf("bundle holds %d certs, want public root then agentg CA", len(got))
	}
	if _, err := ca.bundlePEM([]string{filepath.Join(dir, "missing.pem")}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no system bundle: err %v, want fs.ErrNotExist", err)
	}
}
