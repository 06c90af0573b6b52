package certs

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/agentg/agentg/internal/filetrust"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"go.step.sm/crypto/kms"
	kmsapi "go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/uri"
)

// LoadExternal loads a bring-your-own CA: certFile is a PEM chain (the
// certificate that signs leaves first, then its parents, optionally up to the
// root), key is either the path of an unencrypted PEM private key (mode 0600)
// or a go.step.sm/crypto/kms URI such as "softkms:path=/abs/key.pem". See the
// package documentation for a step-ca intermediate as an example.
//
// The same checks as LoadDir apply; in addition each certificate of the chain
// must be signed by the next one.
func LoadExternal(certFile, key string) (*CA, error) {
	if certFile == "" || key == "" {
		return nil, errors.New("load external CA: certificate file and key are both required")
	}
	chain, err := readChain(certFile)
	if err != nil {
		return nil, err
	}
	var (
		signer crypto.Signer
		km     kms.KeyManager
		source string
	)
	if isKMSURI(key) {
		signer, km, err = kmsSigner("CA key", key)
		source = "kms " + redactURI(key)
	} else {
		signer, err = readKeyFile("CA key", key, filetrust.Provided)
		source = "file " + key
	}
	if err != nil {
		return nil, err
	}
	ca, err := newCA(chain, signer, km, source, time.Now())
	if err != nil {
		if km != nil {
			_ = km.Close()
		}
		return nil, fmt.Errorf("load external CA %s: %w", certFile, err)
	}
	return ca, nil
}

// isKMSURI reports whether key is meant as a KMS URI rather than a file path:
// it parses as "scheme:..." with a scheme of two or more characters and no
// file of that exact name exists.
func isKMSURI(key string) bool {
	u, err := uri.Parse(key)
	if err != nil || len(u.Scheme) < 2 {
		return false
	}
	if _, err := os.Stat(key); err == nil {
		return false
	}
	return true
}

// kmsSigner opens the KMS named by the URI's scheme and asks it for a signer
// for that key. The same URI configures the KMS (module-path, token, pin-value
// for pkcs11; path for softkms) and names the key. what names the key in
// errors ("CA key").
func kmsSigner(what, keyURI string) (crypto.Signer, kms.KeyManager, error) {
	shown := redactURI(keyURI)
	typ, err := kmsapi.TypeOf(keyURI)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s %s: %w", what, shown, err)
	}
	if typ == kmsapi.SoftKMS {
		if path := SoftKMSPath(keyURI); path != "" {
			if err := checkKeyMode(what, path); err != nil {
				return nil, nil, err
			}
		}
	}
	km, err := kms.New(context.Background(), kmsapi.Options{Type: typ, URI: keyURI})
	if err != nil {
		return nil, nil, fmt.Errorf("load %s %s: open %s KMS (is support for it compiled in?): %w", what, shown, typ, err)
	}
	signer, err := km.CreateSigner(&kmsapi.CreateSignerRequest{SigningKey: keyURI})
	if err != nil {
		_ = km.Close()
		if errors.As(err, new(kmsapi.NotFoundError)) {
			err = fmt.Errorf("%w: %w", err, fs.ErrNotExist)
		}
		return nil, nil, fmt.Errorf("load %s %s: %w", what, shown, err)
	}
	return signer, km, nil
}

// SoftKMSPath returns the file a softkms URI points at, as softkms
// resolves it ("" for another KMS or a URI it cannot read): where a key's
// file permissions are checked before softkms reads it.
func SoftKMSPath(keyURI string) string {
	u, err := uri.ParseWithScheme(string(kmsapi.SoftKMS), keyURI)
	if err != nil {
		return ""
	}
	if p := u.Get("path"); p != "" {
		return p
	}
	if u.Path != "" {
		return u.Path
	}
	return u.Opaque
}

// redactURI hides secrets (PINs, passwords) that KMS URIs may carry, so the
// URI can appear in errors and in Show.
func redactURI(raw string) string {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return raw
	}
	redact := func(part, sep string) string {
		fields := strings.Split(part, sep)
		for i, f := range fields {
			name, _, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			n, _ := url.QueryUnescape(name)
			switch strings.ToLower(n) {
			case "pin", "pin-value", "pin-source", "password", "passphrase", "secret", "token-pin", "management-key":
				fields[i] = name + "=REDACTED"
			}
		}
		return strings.Join(fields, sep)
	}
	opaque, query, hasQuery := strings.Cut(rest, "?")
	out := scheme + ":" + redact(opaque, ";")
	if hasQuery {
		out += "?" + redact(query, "&")
	}
	return out
}
