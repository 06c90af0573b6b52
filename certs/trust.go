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

// TrustEnv returns the shell lines `agentg ca trust-env` prints: exports
// that make common clients trust agentg's CA. Each variable points at
// bundle, the roots trusted before plus the CA (WriteBundle): those that
// replace a runtime's roots (SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
// CURL_CA_BUNDLE, GIT_SSL_CAINFO) then keep every other host verifying,
// and those that add to built-in roots (NODE_EXTRA_CA_CERTS, DENO_CERT)
// get a corporate --roots bundle too. Without a bundle ("": no roots
// file was found) every variable points at caFile, and the comments say
// what that breaks.
func TrustEnv(caFile, bundle string) string {
	q := shellQuote(caFile)
	var b strings.Builder
	fmt.Fprintf(&b, "# agentg CA trust environment for %s\n", q)
	target := q
	if bundle != "" {
		target = shellQuote(bundle)
		fmt.Fprintf(&b, "# %s holds the roots trusted before, then the agentg CA: hosts agentg\n", target)
		b.WriteString("# passes through (not intercepted) still verify.\n")
	} else {
		b.WriteString("# No root bundle was found (--roots FILE names one): SSL_CERT_FILE,\n")
		b.WriteString("# REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and GIT_SSL_CAINFO then hold only the agentg CA\n")
		b.WriteString("# and REPLACE the default roots: hosts agentg does not intercept will fail to verify.\n")
	}
	for _, v := range [...]string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS", "DENO_CERT"} {
		fmt.Fprintf(&b, "export %s=%s\n", v, target)
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
	b, _, err := c.bundlePEM(systemBundles())
	return b, err
}

// bundlePEM is the first of candidates that exists, then the CA; from is
// the file it read.
func (c *CA) bundlePEM(candidates []string) (b []byte, from string, err error) {
	for _, p := range candidates {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("read root bundle %s: %w", p, err)
		}
		var b bytes.Buffer
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
		b.WriteString("# agentg CA, SHA-256 " + c.fingerprint + "\n")
		b.Write(c.pem)
		return b.Bytes(), p, nil
	}
	return nil, "", fmt.Errorf("%w found (looked in %s): %w", errNoRoots, strings.Join(candidates, ", "), fs.ErrNotExist)
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
