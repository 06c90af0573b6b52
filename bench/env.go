package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
)

// Host is the name the clients use for the origins. Direct clients map it
// to 127.0.0.1 in their dialer; agentg maps it through the policy's resolve
// table, so both see the same URLs, Host headers and SNI.
const Host = "bench.test"

// SmallBody is the size of the body the keep-alive scenarios fetch.
const SmallBody = 1024

// Policy is the agentg policy the harness needs: loopback origins under
// Host allowed, everything else denied. An external agentg measured with
// Config.ProxyURL must be started with it.
const Policy = `# agentg-load: allow the harness's loopback origins, deny the rest.
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: ` + Host + `
resolve:
  ` + Host + `: [127.0.0.1]
`

// Config says how to build an Env.
type Config struct {
	// ProxyURL is an external agentg (http://127.0.0.1:3128) started with
	// Policy. Empty starts an agentg proxy in this process.
	ProxyURL string
	// AuditLog receives the in-process proxy's audit events; nil discards
	// them (logging off).
	AuditLog io.Writer
}

// Env is a running set of origins and a proxy, all on loopback.
type Env struct {
	HTTPBase  string   // http://bench.test:port
	HTTPSBase string   // https://bench.test:port
	Proxy     *url.URL // the agentg the proxied clients use
	External  bool     // Proxy is not in this process: no event counts

	roots   *x509.CertPool
	origins map[string]string // bench.test:port → 127.0.0.1:port
	events  eventCounter
	srv     *proxy.Server
	servers []*http.Server
}

// Start builds an Env. Close it when done.
func Start(cfg Config) (e *Env, err error) {
	e = &Env{origins: map[string]string{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()

	httpAddr, err := e.serve(nil)
	if err != nil {
		return nil, err
	}
	cert, roots, err := selfSigned()
	if err != nil {
		return nil, err
	}
	e.roots = roots
	httpsAddr, err := e.serve(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	e.HTTPBase = "http://" + e.alias(httpAddr)
	e.HTTPSBase = "https://" + e.alias(httpsAddr)

	if cfg.ProxyURL != "" {
		e.Proxy, err = url.Parse(cfg.ProxyURL)
		if err != nil || e.Proxy.Host == "" {
			return nil, fmt.Errorf("bad -proxy URL %q", cfg.ProxyURL)
		}
		e.External = true
		return e, nil
	}

	eng, err := rules.Parse("agentg-load:policy.yaml", []byte(Policy))
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	w := cfg.AuditLog
	if w == nil {
		w = io.Discard
	}
	e.events.w = w
	e.srv, err = proxy.New(proxy.Config{Policy: rules.NewLive("", eng), Log: audit.New(&e.events), DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go e.srv.Serve(ln)
	e.Proxy = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	return e, nil
}

// Close stops the proxy (when in-process) and the origins.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e.srv != nil {
		e.srv.Shutdown(ctx)
	}
	for _, s := range e.servers {
		s.Shutdown(ctx)
	}
}

// Events returns how many http and connect decision events the in-process
// proxy has logged so far (tunnels log theirs when they close).
func (e *Env) Events() (httpEvents, connectEvents int64) {
	return e.events.http.Load(), e.events.connect.Load()
}

// Client returns an HTTP/1.1 client keeping up to conns connections alive,
// going through the proxy when viaProxy is set. Close its idle connections
// (CloseIdleConnections) when done.
func (e *Env) Client(viaProxy bool, conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			if a, ok := e.origins[address]; ok {
				address = a // direct: bench.test → 127.0.0.1
			}
			return d.DialContext(ctx, network, address)
		},
		TLSClientConfig:       &tls.Config{RootCAs: e.roots},
		MaxIdleConns:          conns + 4,
		MaxIdleConnsPerHost:   conns + 4,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
	}
	if viaProxy {
		tr.Proxy = http.ProxyURL(e.Proxy)
	}
	return &http.Client{Transport: tr}
}

func (e *Env) alias(hostport string) string {
	_, port, _ := net.SplitHostPort(hostport)
	a := net.JoinHostPort(Host, port)
	e.origins[a] = hostport
	return a
}

// serve starts an origin on a loopback port, with TLS when tc is set.
func (e *Env) serve(tc *tls.Config) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s := &http.Server{
		Handler:           http.HandlerFunc(origin),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		TLSConfig:         tc,
		// No HTTP/2: both modes speak HTTP/1.1, as through a CONNECT tunnel
		// without ForceAttemptHTTP2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	e.servers = append(e.servers, s)
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	go s.Serve(ln)
	return ln.Addr().String(), nil
}

var (
	small = bytes.Repeat([]byte("a"), SmallBody)
	chunk = bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
)

// origin serves /small (SmallBody bytes) and /large?n=N (N bytes generated
// as they are written, never held in memory).
func origin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/small":
		w.Header().Set("Content-Length", strconv.Itoa(SmallBody))
		w.Write(small)
	case "/large":
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(chunk)))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	default:
		http.NotFound(w, r)
	}
}

// selfSigned makes a certificate for Host and 127.0.0.1 and a pool that
// trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: Host},
		DNSNames:              []string{Host},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// eventCounter passes the proxy's log through and counts decision events
// by kind, so a run can show its requests really went through agentg.
type eventCounter struct {
	w             io.Writer
	http, connect atomic.Int64
}

// Decision events carry a kind; operational messages do not.
var (
	connectMark = []byte(`"kind":"connect"`)
	httpMark    = []byte(`"kind":"http"`)
)

func (c *eventCounter) Write(p []byte) (int, error) {
	switch {
	case bytes.Contains(p, httpMark):
		c.http.Add(1)
	case bytes.Contains(p, connectMark):
		c.connect.Add(1)
	}
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

var errShortBody = errors.New("short body")
