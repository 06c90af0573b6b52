package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Host is the name the clients use for the origins. Direct clients map it
// to 127.0.0.1 in their dialer; agentg maps it through the policy's resolve
// table and Squid through its hosts file, so every mode sees the same URLs,
// Host headers and SNI. Neither proxy intercepts it: HTTPS to Host through
// a proxy is a plain CONNECT tunnel.
const Host = "bench.test"

// InterceptHost is a second name for the same loopback origins, which the
// proxies intercept: agentg's policy names it under intercept, Squid's
// configuration bumps it. The origin's certificate is valid for both names.
const InterceptHost = "intercept.test"

// SmallBody is the size of the body the keep-alive scenarios fetch.
const SmallBody = 1024

// Policy is the policy agentg runs with: loopback origins under Host and
// InterceptHost allowed, everything else denied; tunnels to InterceptHost
// intercepted, with one HTTP rule (which the benchmark's GETs do not match)
// so that each intercepted request goes through the HTTP rule lookup as it
// would under a real policy.
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
	// Agentg is the agentg binary to run; empty builds one from this
	// module (go build, once per process).
	Agentg string
	// Squid runs Squid beside agentg when it is installed; SquidRequired
	// makes a missing Squid (or one that cannot ssl-bump) an error instead
	// of a note.
	Squid, SquidRequired bool
	// Keep leaves the run's directory (policy, logs, Squid's config) in
	// place; Env.Dir names it.
	Keep bool
	// Stderr receives the proxies' stderr (nil: kept only for errors).
	Stderr io.Writer
	// PolicyExtra is appended to Policy (new top-level sections only),
	// for the benches that measure what a section costs (creds.go).
	PolicyExtra string
	// Origin, when set, answers on the HTTPS origin instead of
	// testenv.Sized (the model-call bench's provider, llm.go).
	Origin http.Handler
}

// Env is a running set of origins and proxies, all on loopback: agentg as
// its own process (`agentg serve --log-file`), and Squid when asked for
// and installed.
type Env struct {
	Dir           string // the run's files: agentg's policy, log and data dir, Squid's
	HTTPBase      string // http://bench.test:port
	HTTPSBase     string // https://bench.test:port (tunnelled by the proxies)
	InterceptBase string // https://intercept.test:port, same origin (intercepted by the proxies)
	Agentg        *testenv.Agentg
	Squid         *SquidServer // nil when not running
	// SquidNote says why Squid is not running, or what it cannot do.
	SquidNote string

	keep        bool
	roots       *x509.CertPool // trusts the origin (the test upstream CA)
	agentgRoots *x509.CertPool // trusts agentg's CA only
	squidRoots  *x509.CertPool // trusts Squid's bump CA only
	origins     map[string]string
	plain, tls  *testenv.Upstream
	agentgLog   *logCounter
	squidLog    *logCounter
	stopped     bool
}

// Start builds an Env. Close it when done.
func Start(cfg Config) (e *Env, err error) {
	e = &Env{origins: map[string]string{}, keep: cfg.Keep}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Dir, err = os.MkdirTemp("", "agentg-bench-"); err != nil {
		return nil, err
	}
	// Searchable by the unprivileged user a root Squid drops to.
	if err = os.Chmod(e.Dir, 0o755); err != nil {
		return nil, err
	}

	upCA, err := testenv.NewCA("agentg bench upstream CA")
	if err != nil {
		return nil, err
	}
	e.roots = upCA.Pool()
	leaf, err := upCA.Leaf([]string{Host, InterceptHost, "127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	sized := http.HandlerFunc(testenv.Sized)
	e.plain = testenv.StartUpstream(testenv.UpstreamOptions{Handler: sized, Quiet: true})
	var tlsOrigin http.Handler = sized
	if cfg.Origin != nil {
		tlsOrigin = cfg.Origin
	}
	e.tls = testenv.StartUpstream(testenv.UpstreamOptions{Handler: tlsOrigin, Cert: &leaf, Quiet: true})
	e.HTTPBase = "http://" + e.alias(Host, e.plain)
	e.HTTPSBase = "https://" + e.alias(Host, e.tls)
	e.InterceptBase = "https://" + e.alias(InterceptHost, e.tls)

	// agentg as users run it: its own process, a policy file, events to
	// --log-file, its CA created in its data dir; the origin's CA is an
	// extra upstream root for the intercepted tunnels.
	upCAFile := filepath.Join(e.Dir, "upstream-ca.pem")
	if err = upCA.WriteCert(upCAFile); err != nil {
		return nil, err
	}
	e.Agentg, err = testenv.StartAgentg(testenv.AgentgConfig{
		Binary: cfg.Agentg, Dir: filepath.Join(e.Dir, "agentg"), Policy: Policy + cfg.PolicyExtra,
		Args:   []string{"--upstream-ca", upCAFile, "--reload-interval", "0"},
		Stderr: cfg.Stderr,
	})
	if err != nil {
		return nil, err
	}
	if e.agentgRoots, err = e.Agentg.CAPool(); err != nil {
		return nil, err
	}
	e.agentgLog = &logCounter{path: e.Agentg.LogFile}

	if cfg.Squid {
		if err = e.startSquid(cfg, upCA); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// startSquid runs Squid with ssl-bump for InterceptHost when this squid can
// bump, plain otherwise; missing, it is a note unless required.
func (e *Env) startSquid(cfg Config, upCA *testenv.CA) error {
	info, err := FindSquid()
	if err != nil {
		if cfg.SquidRequired {
			return err
		}
		e.SquidNote = err.Error()
		return nil
	}
	if !info.Bump() {
		if cfg.SquidRequired {
			return fmt.Errorf("squid %s cannot ssl-bump (built without OpenSSL; install squid-openssl)", info.Version)
		}
		e.SquidNote = "squid " + info.Version + " cannot ssl-bump (install squid-openssl): no Squid rows for the intercepted scenarios"
	}
	bumpCA, err := testenv.NewCA("agentg bench squid bump CA")
	if err != nil {
		return err
	}
	e.Squid, err = StartSquid(SquidConfig{
		Info: info, Dir: filepath.Join(e.Dir, "squid"),
		Hosts:      map[string]string{Host: "127.0.0.1", InterceptHost: "127.0.0.1"},
		UpstreamCA: upCA.CertPEM(), BumpCA: bumpCA, BumpHosts: []string{InterceptHost},
		Stderr: cfg.Stderr,
	})
	if err != nil {
		return err
	}
	e.squidRoots = bumpCA.Pool()
	e.squidLog = &logCounter{path: e.Squid.AccessLog, squid: true}
	return nil
}

// Shutdown stops the proxies (SIGTERM, so they flush their logs), leaving
// the origins and the files; Close calls it.
func (e *Env) Shutdown() error {
	if e.stopped {
		return nil
	}
	e.stopped = true
	var errs []error
	if e.Agentg != nil {
		errs = append(errs, e.Agentg.Stop(10*time.Second))
	}
	if e.Squid != nil {
		errs = append(errs, e.Squid.Stop())
	}
	return errors.Join(errs...)
}

// Close stops the proxies and the origins and removes the run's files
// (unless Config.Keep).
func (e *Env) Close() {
	e.Shutdown()
	for _, u := range []*testenv.Upstream{e.plain, e.tls} {
		if u != nil {
			u.Close()
		}
	}
	if e.Dir != "" && !e.keep {
		os.RemoveAll(e.Dir)
	}
}

// ProxyURL is where mode m's clients send their requests; nil for Direct.
func (e *Env) ProxyURL(m Mode) *url.URL {
	switch {
	case m == Agentg && e.Agentg != nil:
		return e.Agentg.URL()
	case m == Squid && e.Squid != nil:
		return e.Squid.URL()
	}
	return nil
}

// proxyPid is the process whose CPU time a run in mode m charges to the
// proxy; 0 for Direct.
func (e *Env) proxyPid(m Mode) int {
	switch {
	case m == Agentg && e.Agentg != nil:
		return e.Agentg.Pid()
	case m == Squid && e.Squid != nil:
		return e.Squid.Pid()
	}
	return 0
}

// OriginTLSAccepts is how many connections the HTTPS origin has accepted:
// with a new connection per request, direct runs open one per request,
// while agentg's intercepted runs reuse its pooled upstream connections.
func (e *Env) OriginTLSAccepts() int64 { return e.tls.ConnCount() }

// ClientFor returns the HTTP/1.1 client sc's runs use in mode m: straight
// to the origins for Direct, through the mode's proxy otherwise. For an
// intercepting scenario a proxied client trusts that proxy's CA and nothing
// else, so a request that completes has seen the proxy's leaf, not the
// origin's; other clients trust the origin's CA. With sc.NewConn every
// request opens (and closes) its own connection, and through a proxy its
// own CONNECT tunnel; otherwise up to conns connections are kept alive.
// Close its idle connections (CloseIdleConnections) when done.
func (e *Env) ClientFor(m Mode, sc Scenario, conns int) *http.Client {
	roots := e.roots
	if sc.Intercept {
		switch m {
		case Agentg:
			roots = e.agentgRoots
		case Squid:
			roots = e.squidRoots
		}
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
		// handshake, whoever serves it.
		TLSClientConfig:       &tls.Config{RootCAs: roots},
		MaxIdleConns:          conns + 4,
		MaxIdleConnsPerHost:   conns + 4,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		DisableKeepAlives:     sc.NewConn,
	}
	if u := e.ProxyURL(m); u != nil {
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr}
}

// Base is the origin URL (scheme://name:port) sc's clients use.
func (e *Env) Base(sc Scenario) string {
	switch {
	case sc.Intercept:
		return e.InterceptBase
	case sc.TLS:
		return e.HTTPSBase
	default:
		return e.HTTPBase
	}
}

// alias names u as name:port for the clients, and maps that back to its
// loopback address for the direct ones.
func (e *Env) alias(name string, u *testenv.Upstream) string {
	a := u.HostPort(name)
	e.origins[a] = u.Listener.Addr().String()
	return a
}
