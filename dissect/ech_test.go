package dissect

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// echConfig builds one ECHConfig (draft-ietf-tls-esni §4: version
// 0xfe0d, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 with AES-128-GCM) for
// publicName, and returns it, the ECHConfigList a client is given, and
// the private key a server needs.
func echConfig(t testing.TB, publicName string) (config, list []byte, key *ecdh.PrivateKey) {
	t.Helper()
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddUint16(ExtensionECH) // ECHConfig.version
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(7)     // config_id
		b.AddUint16(0x20) // kem_id: DHKEM(X25519, HKDF-SHA256)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(key.PublicKey().Bytes()) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(1) // kdf_id: HKDF-SHA256
			b.AddUint16(1) // aead_id: AES-128-GCM
		})
		b.AddUint8(0) // maximum_name_length
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(publicName)) })
		b.AddUint16(0) // no extensions
	})
	config = b.BytesOrPanic()
	var l cryptobyte.Builder
	l.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(config) })
	return config, l.BytesOrPanic(), key
}

// A real ECH client sends the public name as its SNI and the name it
// means encrypted; the hello says ECH, and reports the outer name, which
// is all that anyone without the key can read.
func TestReadClientHelloECH(t *testing.T) {
	config, list, key := echConfig(t, "public.example")
	flight := firstFlight(t, &tls.Config{
		ServerName:                     "secret.example",
		EncryptedClientHelloConfigList: list,
		MinVersion:                     tls.VersionTLS13,
		InsecureSkipVerify:             true,
	})
	h, got, err := ReadClientHello(bytes.NewReader(flight), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.ECH || h.ServerName != "public.example" || !bytes.Equal(got, flight) {
		t.Errorf("ECH hello read as %+v (%d of %d bytes)", h, len(got), len(flight))
	}
	if h.ECHOuterExtensions {
		t.Error("ech_outer_extensions reported in an outer hello")
	}

	// The ECH is real: a crypto/tls server holding the key decrypts the
	// inner hello and sees the name the client meant.
	var inner string
	tls.Server(&readOnlyConn{r: bytes.NewReader(flight)}, &tls.Config{
		EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{{Config: config, PrivateKey: key.Bytes()}},
		GetConfigForClient: func(ch *tls.ClientHelloInfo) (*tls.Config, error) {
			inner = ch.ServerName
			return nil, errCaptured
		},
	}).Handshake()
	if inner != "secret.example" {
		t.Errorf("a server with the ECH key reads SNI %q, want the inner secret.example", inner)
	}

	// Refragmented across records, it reads the same.
	in := refragment(t, flight, 5, 300)
	if h, _, err := ReadClientHello(bytes.NewReader(in), 0); err != nil || !h.ECH || h.ServerName != "public.example" {
		t.Errorf("refragmented ECH hello: %+v, %v", h, err)
	}
}

// ech_outer_extensions belongs only in an inner hello; one in the clear
// is reported, so the caller can refuse it.
func TestReadClientHelloECHOuterExtensions(t *testing.T) {
	flight := firstFlight(t, &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true})
	in := rebuildHello(t, flight, func(es []ext) []ext {
		return append(es, ext{ExtensionECHOuterExtensions, []byte{2, 0, 10}})
	})
	h, _, err := ReadClientHello(bytes.NewReader(in), 0)
	if err != nil || !h.ECHOuterExtensions || h.ECH || h.ServerName != "api.example.com" {
		t.Errorf("got %+v, %v; want ech_outer_extensions reported", h, err)
	}
}
