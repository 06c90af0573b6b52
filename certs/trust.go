package certs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// systemBundles returns the usual locations of the system's PEM root bundle
// (the list crypto/x509 searches on Linux and the BSDs).
func systemBundles() []string {
	return []string{
		"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
		"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
		"/etc/ssl/ca-bundle.pem",                            // openSUSE
		"/etc/pki/tls/cacert.pem",                           // OpenELEC
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
		"/etc/ssl/cert.pem",                                 // Alpine, macOS, BSDs
	}
}

// TrustEnv returns the shell lines `agentg ca trust-env` prints: exports that
// make common clients trust caFile, and comments on what each does and on the
// Debian system store. caFile should be the CA PEM (what `agentg ca export`
// writes) or a bundle from BundlePEM; the comments say which variables
// replace the default roots rather than add to them.
func TrustEnv(caFile string) string {
	q := shellQuote(caFile)
	var b strings.Builder
	fmt.Fprintf(&b, "# agentg CA trust environment for %s\n", q)
	b.WriteString("# NODE_EXTRA_CA_CERTS and DENO_CERT add this file to the built-in roots.\n")
	b.WriteString("# SSL_CERT_FILE (OpenSSL, Go and most tools on them), REQUESTS_CA_BUNDLE,\n")
	b.WriteString("# CURL_CA_BUNDLE and GIT_SSL_CAINFO REPLACE the default root bundle: if the agent\n")
	b.WriteString("# also reaches hosts that agentg does not intercept, point them at a bundle of the\n")
	b.WriteString("# public roots plus the agentg CA instead, e.g. on Debian/Ubuntu:\n")
	fmt.Fprintf(&b, "#   cat /etc/ssl/certs/ca-certificates.crt %s > agentg-bundle.pem\n", q)
	for _, v := range [...]string{
		"SSL_CERT_FILE",
		"REQUESTS_CA_BUNDLE",
		"NODE_EXTRA_CA_CERTS",
		"CURL_CA_BUNDLE",
		"GIT_SSL_CAINFO",
		"DENO_CERT",
	} {
		fmt.Fprintf(&b, "export %s=%s\n", v, q)
	}
	b.WriteString("# To trust the CA system-wide on Debian/Ubuntu instead (as root; the file must\n")
	b.WriteString("# hold only the agentg CA, not a bundle):\n")
	fmt.Fprintf(&b, "#   cp %s /usr/local/share/ca-certificates/agentg.crt && update-ca-certificates\n", q)
	return b.String()
}

// BundlePEM returns the system's public root bundle followed by the CA
// certificate(s): a file to point SSL_CERT_FILE and friends at when the agent
// needs both intercepted and non-intercepted TLS to verify.
func (c *CA) BundlePEM() ([]byte, error) {
	return c.bundlePEM(systemBundles())
}

func (c *CA) bundlePEM(candidates []string) ([]byte, error) {
	for _, p := range candidates {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read system root bundle %s: %w", p, err)
		}
		var b bytes.Buffer
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
		b.WriteString("# agentg CA, SHA-256 " + c.fingerprint + "\n")
		b.Write(c.pem)
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("no system root bundle found (looked in %s): %w", strings.Join(candidates, ", "), fs.ErrNotExist)
}

// shellQuote quotes s for a POSIX shell unless it is made only of characters
// that need no quoting.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:@%+=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
