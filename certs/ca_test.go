package certs

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.step.sm/crypto/pemutil"
)

func TestCAExport(t *testing.T) {
	root, inter := stepLikeIntermediate(t)
	dir := t.TempDir()
	external, err := LoadExternal(
		writeFile(t, filepath.Join(dir, "c.crt"), certsPEM(inter.cert, root.cert), 0o644),
		writeFile(t, filepath.Join(dir, "k.key"), keyPEM(t, inter.key), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	own := newTestCA(t)

	for _, tc := range []struct {
		name  string
		ca    *CA
		certs int
		show  []string
	}{
		{name: "own", ca: own, certs: 1, show: []string{"Subject:      CN=agentg CA,O=agentg", "Key:          ECDSA P-256", "Key source:   file ", "Not before:", "Not after:"}},
		{name: "external", ca: external, certs: 2, show: []string{"Subject:      CN=agentg intermediate", "Issuer:       CN=Test Root CA", "Parent 1:     CN=Test Root CA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.ca.Certificate()
			sum := sha256.Sum256(c.Raw)
			want := strings.ToUpper(hex.EncodeToString(sum[:]))
			fp := tc.ca.Fingerprint()
			if strings.ReplaceAll(fp, ":", "") != want || !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
				t.Errorf("Fingerprint() = %s, want colon-separated %s", fp, want)
			}
			parsed, err := pemutil.ParseCertificateBundle(tc.ca.PEM())
			if err != nil {
				t.Fatal(err)
			}
			if len(parsed) != tc.certs || !parsed[0].Equal(c) {
				t.Fatalf("PEM() holds %d certs, first %s", len(parsed), parsed[0].Subject)
			}
			if strings.Contains(string(tc.ca.PEM()), "PRIVATE") {
				t.Fatal("PEM() contains a private key")
			}
			p := tc.ca.PEM()
			p[0] = 'X'
			if tc.ca.PEM()[0] == 'X' {
				t.Error("PEM() returns the internal buffer")
			}
			show := tc.ca.Show()
			for _, s := range append(tc.show, "SHA-256:      "+fp) {
				if !strings.Contains(show, s) {
					t.Errorf("Show() lacks %q:\n%s", s, show)
				}
			}
		})
	}
}
