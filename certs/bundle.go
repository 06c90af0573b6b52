package certs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentg/agentg/internal/atomicfile"
)

// The trust bundle: the roots a runtime trusted before, plus agentg's CA,
// in the data directory, so that pointing SSL_CERT_FILE and its kin at it
// adds agentg's CA rather than replacing every root (which breaks HTTPS
// to each host agentg does not intercept).

const (
	// BundleFile is the bundle, in the data directory.
	BundleFile = "ca-bundle.pem"
	// BundleRootsFile records the roots file the bundle was made from
	// when it is not the system's (`agentg ca trust-env --roots`), so that
	// serve remakes it from the same file.
	BundleRootsFile = "ca-bundle.roots"
)

// WriteBundle writes dir/ca-bundle.pem: the PEM roots of roots (a file;
// "": the one recorded by an earlier call, else the system bundle)
// followed by c's certificate, and records roots when given. It returns
// the bundle's path, and the roots file it read.
func (c *CA) WriteBundle(dir, roots string) (path, from string, err error) {
	candidates := systemBundles()
	if roots == "" {
		if b, err := os.ReadFile(filepath.Join(dir, BundleRootsFile)); err == nil {
			roots = strings.TrimSpace(string(b))
		}
	} else if err := atomicfile.Write(filepath.Join(dir, BundleRootsFile), []byte(roots+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("write trust bundle: %w", err)
	}
	if roots != "" {
		candidates = []string{roots}
	}
	data, from, err := c.bundlePEM(candidates)
	if err != nil {
		return "", "", fmt.Errorf("write trust bundle: %w", err)
	}
	path = filepath.Join(dir, BundleFile)
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return "", "", fmt.Errorf("write trust bundle: %w", err)
	}
	return path, from, nil
}

// errNoRoots: none of the candidate roots files exists (it wraps
// fs.ErrNotExist too).
var errNoRoots = errors.New("no root bundle")
