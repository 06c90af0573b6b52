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
	"os"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
)

// Host is the name the clients use for the origins. Direct clients map it
// to 127.0.0.1 in their dialer; agentg maps it through the policy's resolve
// table, so both see the same URLs, Host headers and SNI. agentg does not
// intercept it: HTTPS to Host through agentg is a plain CONNECT tunnel.
const Host = "bench.test"

// InterceptHost is a second name for the same loopback origins, which the
// policy intercepts: HTTPS to it through agentg is a CONNECT tunnel whose
// TLS agentg terminates (with a leaf from its own CA) and re-originates.
// The HTTPS origin's certificate is valid for both names.
const InterceptHost = "intercept.test"

// SmallBody is the size of the body the keep-alive scenarios fetch.
const SmallBody = 1024

// Policy is the agentg policy the harness needs: loopback origins under
// Host and InterceptHost allowed, everything else denied; tunnels to
// InterceptHost intercepted, with one HTTP rule (which the benchmark's GETs
// do not match) so that each intercepted request goes through the HTTP
// rule lookup as it would under a real policy. An external agentg measured
// with Config.ProxyURL must be started with it (the intercepted mode is
// skipped then: the harness's clients do not trust that agentg's CA, nor
// does it trust the harness's origin).
const Policy = `# agentg-load: allow the harness's loopback origins, deny the rest.
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: ` + Host + `
  - allow: ` + InterceptHost + `
resolve:
  ` + Host + `: [127.0.0.1]
  ` + InterceptHost + `: [127.0.0.1]
intercept: [` + InterceptHost + `]
http:
  - deny: "DELETE ` + InterceptHost + `/**"
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
	HTTPBase      string   // http://bench.test:port
	HTTPSBase     string   // https://bench.test:port (not intercepted)
	InterceptBase string   // https://intercept.test:port, same origin (intercepted)
	Proxy         *url.URL // the agentg the proxied clients use
	External      bool     // Proxy is not in this process: no event counts, no interception

	roots     *x509.CertPool // trusts the HTTPS origin's certificate
	caRoots   *x509.CertPool // trusts the in-process agentg's CA (only)
	caDir     string
	ca        *certs.CA
	issuer    *certs.Issuer
	origins   map[string]string // bench.test:port → 127.0.0.1:port
	events    eventCounter
	tlsAccept atomic.Int64 // connections the HTTPS origin accepted
	srv       *proxy.Server
	servers   []*http.Server
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
	e.HTTPBase = "http://" + e.alias(Host, httpAddr)
	e.HTTPSBase = "https://" + e.alias(Host, httpsAddr)
	e.InterceptBase = "https://" + e.alias(InterceptHost, httpsAddr)

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
	// agentg's CA, in a directory of its own removed by Close; clients of
	// the intercepted mode trust it and nothing else, so an intercepted
	// request that completes has seen agentg's leaf, not the origin's.
	if e.caDir, err = os.MkdirTemp("", "agentg-bench-ca-"); err != nil {
		return nil, err
	}
	if e.ca, err = certs.Init(e.caDir, false); err != nil {
		return nil, err
	}
	if e.issuer, err = certs.NewIssuer(e.ca, certs.IssuerOptions{}); err != nil {
		return nil, err
	}
	e.caRoots = x509.NewCertPool()
	e.caRoots.AddCert(e.ca.Certificate())
	e.srv, err = proxy.New(proxy.Config{
		Policy: rules.NewLive("", eng), Log: audit.New(&e.events), DialTimeout: 5 * time.Second,
		Issuer: e.issuer, UpstreamRoots: roots, // agentg's upstream side trusts the origin
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go labelled("agentg", "", func() { e.srv.Serve(ln) })
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
	if e.ca != nil {
		e.ca.Close()
	}
	if e.caDir != "" {
		os.RemoveAll(e.caDir)
	}
}

// Events counts the decision events the in-process proxy has logged.
type Events struct {
	HTTP    int64 `json:"http"`    // kind http: plain HTTP requests and requests inside intercepted tunnels
	Connect int64 `json:"connect"` // kind connect: tunnels, logged when they close
	// Of the above, those carrying "tls":"intercepted".
	InterceptedHTTP    int64 `json:"intercepted_http"`
	InterceptedConnect int64 `json:"intercepted_connect"`
}

// Events returns the decision events the in-process proxy has logged so
// far (tunnels log theirs when they close).
func (e *Env) Events() Events {
	c := &e.events
	return Events{HTTP: c.http.Load(), Connect: c.connect.Load(),
		InterceptedHTTP: c.ihttp.Load(), InterceptedConnect: c.iconnect.Load()}
}

// LeavesIssued returns how many leaf certificates the in-process agentg
// has signed (its leaf cache makes this 1 for a whole run).
func (e *Env) LeavesIssued() uint64 {
	if e.issuer == nil {
		return 0
	}
	return e.issuer.Issued()
}

// OriginTLSAccepts returns how many connections the HTTPS origin has
// accepted: with new connections per request, direct runs open one per
// request, while intercepted runs reuse agentg's pooled upstream ones.
func (e *Env) OriginTLSAccepts() int64 { return e.tlsAccept.Load() }

// Client returns an HTTP/1.1 client keeping up to conns connections alive,
// going through the proxy when viaProxy is set. Close its idle connections
// (CloseIdleConnections) when done.
func (e *Env) Client(viaProxy bool, conns int) *http.Client {
	m := Direct
	if viaProxy {
		m = Agentg
	}
	return e.ClientFor(m, conns, false)
}

// ClientFor returns an HTTP/1.1 client for mode m: straight to the origins
// for Direct, through the proxy otherwise. The Intercepted mode's client
// trusts agentg's CA and nothing else; the others trust the origin's
// certificate. With newConn every request opens (and closes) its own
// connection, and through agentg its own CONNECT tunnel; otherwise up to
// conns connections are kept alive. Close its idle connections
// (CloseIdleConnections) when done.
func (e *Env) ClientFor(m Mode, conns int, newConn bool) *http.Client {
	roots := e.roots
	if m == Intercepted {
		roots = e.caRoots
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			if a, ok := e.origins[address]; ok {
				address = a // direct: bench.test → 127.0.0.1
			}
			return d.DialContext(ctx, network, address)
		},
		// No ClientSessionCache: every new TLS connection is a full
		// handshake, direct or through agentg.
		TLSClientConfig:       &tls.Config{RootCAs: roots},
		MaxIdleConns:          conns + 4,
		MaxIdleConnsPerHost:   conns + 4,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		DisableKeepAlives:     newConn,
	}
	if m != Direct {
		tr.Proxy = http.ProxyURL(e.Proxy)
	}
	return &http.Client{Transport: tr}
}

// alias names hostport as name:port for the clients, and maps it back to
// hostport for the direct ones.
func (e *Env) alias(name, hostport string) string {
	_, port, _ := net.SplitHostPort(hostport)
	a := net.JoinHostPort(name, port)
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
		ln = tls.NewListener(countingListener{ln, &e.tlsAccept}, tc)
	}
	go labelled("origin", "", func() { s.Serve(ln) })
	return ln.Addr().String(), nil
}

// labelled runs f with the CPU profile label role (client, origin or
// agentg) and, for clients, mode; goroutines f starts inherit them, so
// `go tool pprof -tagfocus role=agentg` shows the proxy's share alone.
func labelled(role string, m Mode, f func()) {
	ls := []string{"role", role}
	if m != "" {
		ls = append(ls, "mode", string(m))
	}
	pprof.Do(context.Background(), pprof.Labels(ls...), func(context.Context) { f() })
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

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// selfSigned makes a certificate for Host, InterceptHost and 127.0.0.1 and
// a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: Host},
		DNSNames:              []string{Host, InterceptHost},
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
// by kind, and those of each kind that were intercepted, so a run can show
// its requests really went through agentg, intercepted or not.
type eventCounter struct {
	w                              io.Writer
	http, connect, ihttp, iconnect atomic.Int64
}

// Decision events carry a kind; operational messages do not. Events of
// intercepted tunnels and of the requests inside them carry the tls mark.
var (
	connectMark     = []byte(`"kind":"connect"`)
	httpMark        = []byte(`"kind":"http"`)
	interceptedMark = []byte(`"tls":"intercepted"`)
)

func (c *eventCounter) Write(p []byte) (int, error) {
	switch {
	case bytes.Contains(p, httpMark):
		c.http.Add(1)
		if bytes.Contains(p, interceptedMark) {
			c.ihttp.Add(1)
		}
	case bytes.Contains(p, connectMark):
		c.connect.Add(1)
		if bytes.Contains(p, interceptedMark) {
			c.iconnect.Add(1)
		}
	}
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

var errShortBody = errors.New("short body")
