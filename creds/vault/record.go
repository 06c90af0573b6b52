package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// A record on disk:
//
//	magic "AGV1" | key id (8 bytes) | nonce (24 bytes) | sealed value
//
// The sealed value is XChaCha20-Poly1305 over the value, with associated
// data "agentg vault record\x00" + name: the name binds the record to its
// place, the key id says which key sealed it (so a wrong key is named as
// such rather than reported as tampering).

const (
	magic    = "AGV1"
	keyIDLen = 8
	nonceLen = chacha20poly1305.NonceSizeX
	header   = len(magic) + keyIDLen + nonceLen
	overhead = chacha20poly1305.Overhead
)

// aeadSealer is the AEAD a vault seals with (cipher.AEAD).
type aeadSealer interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// Errors of a record that cannot be opened; each wraps one of these.
var (
	ErrNotRecord = errors.New("not a vault record")
	ErrOtherKey  = errors.New("sealed under another key")
	ErrTampered  = errors.New("does not authenticate (tampered with, or moved from another record's name)")
)

// record is a decoded record, before it is opened.
type record struct {
	keyID  []byte
	nonce  []byte
	sealed []byte
}

// decodeRecord splits b into a record's parts; it checks the framing only.
func decodeRecord(b []byte) (record, error) {
	if len(b) < header+overhead {
		return record{}, fmt.Errorf("%w: %d bytes, shorter than any record", ErrNotRecord, len(b))
	}
	if !bytes.Equal(b[:len(magic)], []byte(magic)) {
		return record{}, fmt.Errorf("%w: unknown format", ErrNotRecord)
	}
	if len(b) > header+overhead+MaxValue {
		return record{}, fmt.Errorf("%w: larger than any record", ErrNotRecord)
	}
	p := b[len(magic):]
	return record{keyID: p[:keyIDLen], nonce: p[keyIDLen : header-len(magic)], sealed: p[header-len(magic):]}, nil
}

func associated(name string) []byte { return append([]byte("agentg vault record\x00"), name...) }

func (v *Vault) seal(name string, value []byte) ([]byte, error) {
	out := make([]byte, header, header+len(value)+overhead)
	copy(out, magic)
	copy(out[len(magic):], v.keyID[:])
	nonce := out[len(magic)+keyIDLen : header]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return v.aead.Seal(out, nonce, value, associated(name)), nil
}

func (v *Vault) open(name string, b []byte) ([]byte, error) {
	rec, err := decodeRecord(b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(rec.keyID, v.keyID[:]) {
		return nil, fmt.Errorf("%w (the vault's key is %s)", ErrOtherKey, v.key)
	}
	val, err := v.aead.Open(nil, rec.nonce, rec.sealed, associated(name))
	if err != nil {
		return nil, ErrTampered
	}
	return val, nil
}
