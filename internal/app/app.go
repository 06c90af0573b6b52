// Package app starts, reloads and shuts down one whole agentg: the event
// log, the policy and its reload and pin-poll loops, the CA, the MCP
// state and guard, approvals, the DNS filter's listeners, the explicit
// and transparent proxy listeners and the admin API. It is what
// `agentg serve` runs and what the tests start in-process, so both get
// the same wiring in the same order.
//
// Contract: Start returns a serving App or an error with everything it
// had opened closed again. Reload is SIGHUP's reload. Shutdown stops
// taking traffic, gives in-flight requests and tunnels the configured
// grace, and then closes every part in the reverse order of opening, so
// the log is closed last and holds every event, theirs included. App
// parses no flags and sets nothing process-wide (signals and the
// collector are cmd/agentg's).
package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/audit/otlp"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/creds/vault"
	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/internal/filetrust"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// DefaultPolicySource is how the embedded default policy is named in
// events and errors.
const DefaultPolicySource = "embedded:default-policy.yaml"

// App is one running agentg.
type App struct {
	cfg    Config
	ca     *certs.CA
	log    *audit.Logger
	zl     *zerolog.Logger
	source string // the policy's name: its file, or DefaultPolicySource
	live   *rules.Live
	held   *creds.Held // values held at runtime, which the leak guard knows
	store  *state.Memory
	apv    *approvals
	dns    *dnsServer
	srv    *proxy.Server
	vault  *vault.Vault // tokens obtained at runtime, encrypted at rest (vault.go)
	ln     net.Listener
	adm    *adminPlane
	guard  *mcp.Guard
	stdio  stdioServers // the command servers' identities (stdio.go)
	gw     *gatewayDoor
	policy policyLog  // what serve says of each policy it loads (policylog.go)
	otlp   *otlp.Sink // nil: no export (otlp.go)
	// own is srv for goroutines started before it exists (the OTLP
	// export asks it which addresses are agentg's own).
	own atomic.Pointer[proxy.Server]

	stop     context.CancelFunc // ends the reload and pin-poll loops
	served   chan struct{}      // closed when the proxy's Serve returned
	serveErr error              // what it returned; read after served

	// closers undo what Start opened, run last first (like defers).
	closers   []func()
	closeOnce sync.Once

	shutOnce sync.Once
	shutErr  error // the first Shutdown's
}

// Start opens every part of agentg in order and serves. ctx bounds the
// background loops; cancelling it does not stop the proxy (Shutdown does).
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	a = &App{cfg: cfg, served: make(chan struct{})}
	defer func() {
		if err != nil {
			a.Close()
			a = nil
		}
	}()
	if err := a.openLog(); err != nil {
		return a, err
	}
	if err := a.startOTLP(); err != nil {
		return a, err
	}
	eng, source, err := LoadPolicy(cfg.PolicyFile, cfg.DefaultPolicy)
	if err != nil {
		return a, err
	}
	a.source = source
	a.live = rules.NewLive(cfg.PolicyFile, eng)

	// The token, the CA, the MCP state and the held approvals live in the
	// data directory: agentg trusts what is there as its own, so one
	// another local user could write to is refused before anything in it
	// is read (filetrust).
	dataDir := cfg.CA.DataDir
	if dataDir != "" {
		if err := filetrust.CheckDir(dataDir); err != nil {
			return a, err
		}
	}
	if a.vault, err = openVault(dataDir, cfg.VaultKey); err != nil {
		return a, err
	}
	ca, created, err := LoadCA(cfg.CA, true)
	if err != nil {
		return a, err
	}
	a.ca = ca
	a.onClose(func() { ca.Close() })
	if created {
		a.zl.Info().Str("dir", dataDir).Str("fingerprint", ca.Fingerprint()).Msg("created a new CA; trust it with: agentg ca trust-env")
	}
	if dataDir != "" {
		// The trust bundle (the roots plus this CA), remade at each start
		// so that it follows both; without roots to start from, trust-env
		// says so where it is read.
		if _, _, err := ca.WriteBundle(dataDir, ""); err != nil {
			a.zl.Warn().Err(err).Msg("the trust bundle (agentg ca trust-env) was not written")
		}
	}
	issuer, err := certs.NewIssuer(ca, certs.IssuerOptions{})
	if err != nil {
		return a, err
	}
	roots, err := upstreamRoots(cfg.UpstreamCAFiles)
	if err != nil {
		return a, err
	}

	a.store, err = state.NewMemory(state.Options{
		DataDir:       dataDir,
		WriteInterval: cfg.InventoryInterval,
		OnError:       func(err error) { a.zl.Error().Err(err).Msg("mcp state") },
	})
	if err != nil {
		return a, fmt.Errorf("mcp state in %s: %w", dataDir, err)
	}
	a.onClose(func() {
		// The last word on the inventory and the pins' last-seen times,
		// after the proxy has stopped: nothing changes them any more.
		if err := a.store.Close(); err != nil {
			a.zl.Error().Err(err).Msg("writing the MCP inventory and pins on shutdown failed")
		}
	})
	if a.apv, err = openApprovals(cfg.Approvals, dataDir, a.log, a.zl); err != nil {
		return a, err
	}
	a.onClose(a.apv.close) // after the proxy: what is still held is denied first (see Shutdown)
	// The leak guard knows every value agentg holds: the policy's
	// secrets (the proxy points it at each load's) and what is held at
	// runtime (a.held: the OAuth tokens agentg obtains), so the proxy
	// and the MCP guard share one.
	a.held = creds.NewHeld()
	leaks := creds.NewGuard(a.held)
	// The model turns the proxy reads are what the guard ties each
	// tools/call to, through any door (dissect/mcp, llmlink.go).
	turns := &llm.Recent{}
	guard := &mcp.Guard{Log: a.log, State: a.store, Limits: limit.NewRates(limit.Options{}),
		Approvals: a.apv.broker, KeepAlive: cfg.Approvals.KeepAlive, Leaks: leaks, Turns: turns}

	// The DNS filter: its IP→name bindings are what the transparent
	// listener asks (bindings.NamesFor), its cache the proxy resolves
	// through.
	bindings := state.NewBindings(state.BindingsOptions{})
	if a.dns, err = startDNS(cfg.DNS, a.live, a.log, bindings, roots, cfg.Mark); err != nil {
		return a, err
	}
	a.onClose(func() { a.dns.shutdown(context.Background()) })

	broker, err := a.newOAuthBroker() // oauth.go
	if err != nil {
		return a, err
	}
	a.srv, err = proxy.New(proxy.Config{
		Policy: a.live, Log: a.log, Issuer: issuer, UpstreamRoots: roots, MCP: guard, Approvals: a.apv.broker, Leaks: leaks, OAuth: broker,
		FirstBytesTimeout: cfg.FirstBytesTimeout, TunnelIdleTimeout: cfg.TunnelIdleTimeout,
		MaxTunnels: cfg.MaxTunnels, MaxTunnelsPerAgent: cfg.MaxTunnelsPerAgent, Mark: cfg.Mark, Bindings: bindings,
		Resolver: a.dns.resolver(), ReadHeaderTimeout: cfg.ReadHeaderTimeout, BodyIdleTimeout: cfg.BodyIdleTimeout,
		// A token issued by token exchange is agentg's to attach: the
		// agent never had it, so it may send it nowhere (no hosts).
		HeldValue: a.hold,
		Servers:   &a.stdio, Causes: guard, Turns: turns,
	})
	if err != nil {
		return a, err
	}
	a.own.Store(a.srv)
	for _, ad := range a.dns.ownAddrs() {
		a.srv.AddOwnAddr(ad)
	}
	if a.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return a, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	a.adm, err = openAdmin(cfg.Admin, adminDeps{build: cfg.Build, dataDir: dataDir, log: a.log, live: a.live, reloadable: cfg.PolicyFile != "",
		store: a.store, proxy: a.srv, issuer: issuer, approvals: a.apv.broker, dns: a.dns, oauth: broker, otlp: a.otlp})
	if err != nil {
		a.ln.Close()
		return a, err
	}
	a.onClose(func() { a.adm.shutdown(cfg.ShutdownTimeout) })
	a.guard = guard
	if err := a.startStdio(); err != nil {
		a.ln.Close()
		return a, err
	}
	if cfg.Transparent != "" {
		// Before the serving line: once agentg says it serves, both
		// listeners do, and the loop check has passed.
		if err := serveTransparent(ctx, a.srv, cfg.Transparent, cfg.Mark, a.zl); err != nil {
			a.ln.Close()
			a.srv.Shutdown(context.Background())
			return a, err
		}
	}
	if a.gw, err = startGateway(cfg, a.live, guard, a.srv, a); err != nil {
		a.ln.Close()
		a.srv.Shutdown(context.Background())
		return a, err
	}
	a.onClose(func() { a.gw.shutdown(context.Background(), a.zl) })
	// The caller takes signals before Start: a SIGTERM sent on reading
	// this line must stop agentg gracefully, not kill it outright.
	a.policy.loaded(a.zl, a.live.Engine(), true)
	events := "stdout"
	if cfg.LogFile != "" {
		events = cfg.LogFile
		// Events and agentg's own messages all go to the file, so stdout
		// stays silent: say so once where the operator is looking.
		if cfg.Stderr != nil {
			fmt.Fprintf(cfg.Stderr, "agentg serving on %s; events and messages go to %s (--log-file)\n", a.ln.Addr(), cfg.LogFile)
		}
	}
	a.zl.Info().Str("listen", a.ln.Addr().String()).Str("events", events).Strs("dns", a.dns.listening()).Str("policy", source).Str("version", cfg.Build.Version).Str("revision", cfg.Build.Short()).Msg("agentg serving")

	lctx, stop := context.WithCancel(ctx)
	a.stop = stop
	a.onClose(stop)
	a.startLoops(lctx)
	go func() {
		a.serveErr = a.srv.Serve(a.ln)
		close(a.served)
	}()
	a.adm.run(a.afterReload)
	return a, nil
}

// openLog opens the event log: the file (appended, gathered and written
// every LogFlushInterval) or Stdout. Its closer is the first registered,
// so it runs last: the buffered events, and theirs, are written before
// the file closes.
func (a *App) openLog() error {
	if a.cfg.LogFlushInterval < 0 {
		return fmt.Errorf("log flush interval must not be negative, not %s", a.cfg.LogFlushInterval)
	}
	out := a.cfg.Stdout
	if out == nil {
		out = io.Discard
	}
	// A log that cannot be written is said on stderr (audit's sink).
	opts := audit.Options{Sink: "stdout", Stderr: a.cfg.Stderr}
	if a.cfg.LogFile != "" {
		opts.Sink = "file"
		f, err := audit.OpenFile(a.cfg.LogFile)
		if err != nil {
			return err
		}
		a.onClose(func() { f.Close() })
		out = f
		opts.FlushInterval = a.cfg.LogFlushInterval
	}
	a.log = audit.NewWithOptions(out, opts)
	a.onClose(func() { a.log.Close() })
	a.zl = a.log.Zerolog()
	return nil
}

// onClose registers f to run on Close, before everything registered
// earlier.
func (a *App) onClose(f func()) { a.closers = append(a.closers, f) }

// Reload re-reads the policy file (what SIGHUP does), reporting the
// outcome like every other reload trigger. Without a policy file there
// is nothing to reload, which is said and is no error.
func (a *App) Reload() error {
	if a.cfg.PolicyFile == "" {
		a.zl.Info().Msg("SIGHUP: the embedded default policy has nothing to reload")
		return nil
	}
	err := a.live.Reload()
	a.afterReload(err)
	return err
}

// Shutdown stops taking traffic (why, e.g. the signal, is logged), gives
// in-flight requests and tunnels ShutdownTimeout (within ctx) to finish,
// then closes every part (Close). It returns the proxy's shutdown error;
// a second call does nothing and returns the first's.
func (a *App) Shutdown(ctx context.Context, why string) error {
	a.shutOnce.Do(func() {
		a.zl.Info().Str("signal", why).Dur("grace", a.cfg.ShutdownTimeout).Msg("shutting down")
		a.adm.stopping()
		a.apv.broker.Shutdown() // held calls get their error now, not at the grace's end
		sctx, cancel := context.WithTimeout(ctx, a.cfg.ShutdownTimeout)
		a.gw.shutdown(sctx, a.zl) // its sessions end before the guard's state does
		a.shutErr = a.srv.Shutdown(sctx)
		a.dns.shutdown(sctx)
		cancel()
		<-a.served
		a.Close()
	})
	return a.shutErr
}

// Done is closed when the proxy stopped serving, on its own or by
// Shutdown; ServeErr then says why.
func (a *App) Done() <-chan struct{} { return a.served }

// ServeErr is what the proxy's Serve returned; call it after Done.
func (a *App) ServeErr() error { return a.serveErr }

// Close releases every part Start opened, last first, without the
// graceful steps of Shutdown (for when the proxy stopped on its own).
// It is safe to call more than once.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			a.closers[i]()
		}
	})
}

// Held is where agentg holds values it obtains at runtime (OAuth tokens):
// what is held there the leak guard looks for, from the moment it is.
func (a *App) Held() *creds.Held { return a.held }

// Addr is the explicit proxy's listening address.
func (a *App) Addr() net.Addr { return a.ln.Addr() }

// GatewayAddr is where the MCP gateway listens ("unix:/path" for a
// socket), or "" when it is off.
func (a *App) GatewayAddr() string { return a.gw.addr() }

// DNSAddrs are the DNS filter's addresses as bound (nil when it is off).
func (a *App) DNSAddrs() []string { return a.dns.listening() }

// AdminAddr is the admin API's address as recorded ("unix:/path" for a
// socket), or "" when it is off.
func (a *App) AdminAddr() string { return a.adm.address() }

// CACertificate is the CA agentg intercepts with: what a client that
// trusts agentg trusts.
func (a *App) CACertificate() *x509.Certificate { return a.ca.Certificate() }

// Log is the event log, for a caller that reports beside agentg.
func (a *App) Log() *audit.Logger { return a.log }

// loadPolicy loads the policy file, or the embedded default without one.
func LoadPolicy(path string, embedded []byte) (*rules.Engine, string, error) {
	if path == "" {
		if len(embedded) == 0 {
			return nil, "", errors.New("no policy: neither a policy file nor a default policy")
		}
		e, err := rules.Parse(DefaultPolicySource, embedded)
		return e, DefaultPolicySource, err
	}
	e, err := rules.Load(path)
	return e, path, err
}

// serveTransparent opens the transparent listener and refuses to go on
// when agentg's own connections would be redirected back to it.
func serveTransparent(ctx context.Context, srv *proxy.Server, address string, mark int, zl *zerolog.Logger) error {
	ln, err := proxy.ListenTransparent(ctx, address)
	if err != nil {
		return err
	}
	go func() {
		if err := srv.ServeTransparent(ln); err != nil {
			zl.Error().Err(err).Msg("transparent listener stopped")
		}
	}()
	if err := srv.CheckLoop(ctx); err != nil {
		return fmt.Errorf("transparent mode refused: %w", err)
	}
	zl.Info().Str("transparent", ln.Addr().String()).Int("mark", mark).Msg("agentg transparent listener")
	return nil
}

// hold gives the leak guard a value agentg obtained at runtime (a token
// exchanged or issued), under name. A value it cannot hold (empty, or
// with a line break: none could be attached as a header) is said on the
// log by name, never left unsaid.
func (a *App) hold(name, value string) {
	if err := a.held.Hold(name, value); err != nil && a.zl != nil {
		a.zl.Warn().Err(err).Str("credential", name).Msg("leak guard: a runtime value is not looked for")
	}
}
