package certs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestIssuer(t testing.TB, ca *CA, opt IssuerOptions) *Issuer {
	t.Helper()
	iss, err := NewIssuer(ca, opt)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// verifyLeaf checks cert against roots the way a TLS client would.
func verifyLeaf(t *testing.T, cert *tls.Certificate, roots *x509.CertPool, host string, at time.Time) [][]*x509.Certificate {
	t.Helper()
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	chains, err := cert.Leaf.Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatalf("leaf for %q does not verify: %v", host, err)
	}
	return chains
}

func TestLeafVerifies(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	iss := newTestIssuer(t, ca, IssuerOptions{Now: func() time.Time { return now }})
	for _, tc := range []struct {
		host   string
		isIP   bool
		hasCN  bool
		notFor string // a name the leaf must not be valid for
	}{
		{host: "api.example.com", hasCN: true, notFor: "other.example.com"},
		{host: "example.com", hasCN: true, notFor: "www.example.com"},
		{host: "_dmarc.example.com", hasCN: true},
		{host: "xn--bcher-kva.example", hasCN: true},
		{host: "127.0.0.1", isIP: true, hasCN: true, notFor: "127.0.0.2"},
		{host: "2001:db8::1", isIP: true, hasCN: true, notFor: "2001:db8::2"},
		{host: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".example", hasCN: false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			cert, err := iss.Leaf(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			leaf := cert.Leaf
			verifyLeaf(t, cert, poolOf(ca.Certificate()), tc.host, now)
			if tc.notFor != "" {
				if err := leaf.VerifyHostname(tc.notFor); err == nil {
					t.Errorf("leaf for %s also valid for %s", tc.host, tc.notFor)
				}
			}
			if tc.isIP {
				if len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 0 || leaf.IPAddresses[0].String() != tc.host {
					t.Errorf("IP SAN: DNS %v IP %v", leaf.DNSNames, leaf.IPAddresses)
				}
			} else if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != tc.host || len(leaf.IPAddresses) != 0 {
				t.Errorf("DNS SAN: DNS %v IP %v", leaf.DNSNames, leaf.IPAddresses)
			}
			for _, n := range leaf.DNSNames {
				if strings.Contains(n, "*") {
					t.Errorf("wildcard SAN %q", n)
				}
			}
			if got := leaf.Subject.CommonName; (got == tc.host) != tc.hasCN || (!tc.hasCN && got != "") {
				t.Errorf("CN %q (want CN: %v)", got, tc.hasCN)
			}
			if got, want := leaf.NotBefore, now.Add(-DefaultLeafBackdate).Truncate(time.Second); !got.Equal(want) {
				t.Errorf("NotBefore %v, want %v", got, want)
			}
			if got, want := leaf.NotAfter, now.Add(DefaultLeafValidity).Truncate(time.Second); !got.Equal(want) {
				t.Errorf("NotAfter %v, want %v", got, want)
			}
			if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature ||
				len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("usage: IsCA %v KU %v EKU %v", leaf.IsCA, leaf.KeyUsage, leaf.ExtKeyUsage)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %v: want a random positive 128-bit number", leaf.SerialNumber)
			}
			if len(cert.Certificate) != 2 || string(cert.Certificate[1]) != string(ca.Certificate().Raw) {
				t.Errorf("tls chain: %d certificates, want leaf + CA", len(cert.Certificate))
			}
			if cert.PrivateKey == nil || !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(iss.key.Public()) {
				t.Error("private key does not belong to the leaf")
			}
		})
	}
	if got := iss.Issued(); got != 7 {
		t.Errorf("Issued() = %d, want 7", got)
	}
}

func TestLeafShortValidityAndSharedKey(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	iss := newTestIssuer(t, ca, IssuerOptions{Validity: 2 * time.Hour, Backdate: 5 * time.Minute, Now: func() time.Time { return now }})
	a, err := iss.Leaf("a.example")
	if err != nil {
		t.Fatal(err)
	}
	b, err := iss.Leaf("b.example")
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Leaf.NotAfter.Sub(a.Leaf.NotBefore); d != 2*time.Hour+5*time.Minute {
		t.Errorf("validity window %v, want 2h5m", d)
	}
	if a.PrivateKey != b.PrivateKey {
		t.Error("leaves of one issuer should share the leaf key")
	}
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Error("two leaves share a serial number")
	}
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	root := makeCert(t, certSpec{cn: "short-lived root", isCA: true, notAfter: time.Now().Add(3 * time.Hour)})
	ca, err := LoadDir(writeDir(t, certsPEM(root.cert), keyPEM(t, root.key), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	iss := newTestIssuer(t, ca, IssuerOptions{Now: func() time.Time { return now }})
	cert, err := iss.Leaf("capped.example")
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Leaf.NotAfter.Equal(root.cert.NotAfter) {
		t.Errorf("leaf NotAfter %v, want capped at CA NotAfter %v", cert.Leaf.NotAfter, root.cert.NotAfter)
	}
	now = root.cert.NotAfter.Add(time.Minute)
	if _, err := iss.Leaf("late.example"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("issuing after CA expiry: %v", err)
	}
}

func TestLeafRejectsBadHosts(t *testing.T) {
	iss := newTestIssuer(t, newTestCA(t), IssuerOptions{})
	for _, host := range []string{
		"",
		"*.example.com",
		"*",
		"a..example.com",
		".example.com",
		"example.com.",
		"exa mple.com",
		"example.com/path",
		"user@example.com",
		"example.com:443",
		"bücher.example",
		"fe80::1%eth0",
		"[::1]",
		strings.Repeat("a", 64) + ".example",
		strings.Repeat("abcdefghi.", 26) + "com",
		"a\x00b",
	} {
		t.Run(fmt.Sprintf("%q", host), func(t *testing.T) {
			if c, err := iss.Leaf(host); err == nil {
				t.Fatalf("Leaf(%q) issued %v %v", host, c.Leaf.DNSNames, c.Leaf.IPAddresses)
			}
		})
	}
	if n := iss.Issued(); n != 0 {
		t.Errorf("Issued() = %d after only bad hosts", n)
	}
}

func TestLeafCacheReuse(t *testing.T) {
	iss := newTestIssuer(t, newTestCA(t), IssuerOptions{})
	first, err := iss.Leaf("cached.example")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		again, err := iss.Leaf("cached.example")
		if err != nil {
			t.Fatal(err)
		}
		if again != first {
			t.Fatal("repeated Leaf returned a different certificate")
		}
	}
	if n := iss.Issued(); n != 1 {
		t.Fatalf("Issued() = %d, want 1", n)
	}
}

func TestLeafSingleFlight(t *testing.T) {
	iss := newTestIssuer(t, newTestCA(t), IssuerOptions{})
	const callers = 100
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		certs [callers]*tls.Certificate
		errs  [callers]error
	)
	for n := range callers {
		wg.Go(func() {
			<-start
			certs[n], errs[n] = iss.Leaf("herd.example")
		})
	}
	close(start)
	wg.Wait()
	for n := range callers {
		if errs[n] != nil {
			t.Fatal(errs[n])
		}
		if certs[n] != certs[0] {
			t.Fatalf("caller %d got a different certificate", n)
		}
	}
	if got := iss.Issued(); got != 1 {
		t.Fatalf("Issued() = %d for %d concurrent first calls, want 1", got, callers)
	}
}

func TestLeafRenewal(t *testing.T) {
	ca := newTestCA(t)
	var now atomic.Pointer[time.Time]
	t0 := time.Now()
	now.Store(&t0)
	iss := newTestIssuer(t, ca, IssuerOptions{Validity: 9 * time.Hour, Now: func() time.Time { return *now.Load() }})
	first, err := iss.Leaf("renew.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after   time.Duration
		renewed bool
	}{
		{time.Hour, false},
		{6*time.Hour - time.Second, false}, // 3h01s of 9h left: more than a third
		{6 * time.Hour, true},              // a third left: renew
	} {
		at := t0.Add(tc.after)
		now.Store(&at)
		got, err := iss.Leaf("renew.example")
		if err != nil {
			t.Fatal(err)
		}
		if renewed := got != first; renewed != tc.renewed {
			t.Errorf("after %v: renewed=%v, want %v", tc.after, renewed, tc.renewed)
		}
		if tc.renewed {
			verifyLeaf(t, got, poolOf(ca.Certificate()), "renew.example", at)
			if !got.Leaf.NotAfter.After(first.Leaf.NotAfter) {
				t.Error("renewed leaf does not last longer")
			}
		}
	}
	if n := iss.Issued(); n != 2 {
		t.Errorf("Issued() = %d, want 2", n)
	}
}

func TestNewIssuerOptions(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name    string
		opt     IssuerOptions
		wantErr bool
	}{
		{name: "defaults", opt: IssuerOptions{}},
		{name: "negative validity", opt: IssuerOptions{Validity: -time.Hour}, wantErr: true},
		{name: "negative backdate", opt: IssuerOptions{Backdate: -time.Hour}, wantErr: true},
		{name: "negative cache", opt: IssuerOptions{CacheSize: -1}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewIssuer(ca, tc.opt)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
	if _, err := NewIssuer(nil, IssuerOptions{}); err == nil {
		t.Fatal("NewIssuer(nil) succeeded")
	}
}

// TestTLSHandshake proves a leaf works in a real handshake over loopback.
func TestTLSHandshake(t *testing.T) {
	ca := newTestCA(t)
	iss := newTestIssuer(t, ca, IssuerOptions{})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			host := hello.ServerName
			if host == "" { // IP literal: no SNI, use the address dialed
				h, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String())
				if err != nil {
					return nil, err
				}
				host = h
			}
			return iss.Leaf(host)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, "hello from "+c.(*tls.Conn).ConnectionState().ServerName+"\n")
			}()
		}
	}()

	for _, tc := range []struct {
		serverName string
		wantErr    bool
	}{
		{serverName: "api.example.com"},
		{serverName: "127.0.0.1"},
		{serverName: "api.example.com"}, // cached leaf
	} {
		t.Run(tc.serverName, func(t *testing.T) {
			d := tls.Dialer{Config: &tls.Config{RootCAs: poolOf(ca.Certificate()), ServerName: tc.serverName}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			line, err := io.ReadAll(conn)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(line), "hello from") {
				t.Errorf("read %q", line)
			}
			state := conn.(*tls.Conn).ConnectionState()
			if len(state.VerifiedChains) == 0 || !state.VerifiedChains[0][len(state.VerifiedChains[0])-1].Equal(ca.Certificate()) {
				t.Error("chain does not end at the agentg CA")
			}
		})
	}
	if n := iss.Issued(); n != 2 {
		t.Errorf("Issued() = %d, want 2 (one per host)", n)
	}

	// A client that does not trust the CA must fail.
	d := tls.Dialer{Config: &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "api.example.com"}}
	if conn, err := d.DialContext(context.Background(), "tcp", ln.Addr().String()); err == nil {
		conn.Close()
		t.Fatal("handshake succeeded without trusting the CA")
	}
}

func BenchmarkLeafCached(b *testing.B) {
	iss := newTestIssuer(b, newTestCA(b), IssuerOptions{})
	if _, err := iss.Leaf("bench.example.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Leaf("bench.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeafCachedParallel(b *testing.B) {
	iss := newTestIssuer(b, newTestCA(b), IssuerOptions{})
	hosts := make([]string, 64)
	for n := range hosts {
		hosts[n] = fmt.Sprintf("h%d.bench.example", n)
		if _, err := iss.Leaf(hosts[n]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			if _, err := iss.Leaf(hosts[n%len(hosts)]); err != nil {
				b.Error(err)
				return
			}
			n++
		}
	})
}

func BenchmarkLeafUncached(b *testing.B) {
	iss := newTestIssuer(b, newTestCA(b), IssuerOptions{})
	hosts := make([]string, b.N)
	for n := range hosts {
		hosts[n] = fmt.Sprintf("host-%d.bench.example", n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if _, err := iss.Leaf(hosts[n]); err != nil {
			b.Fatal(err)
		}
	}
}
