package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// adminFlags say where serve's admin API listens and which token it
// wants; the CLI commands that talk to a running agentg share them.
type adminFlags struct {
	addr, tokenFile string
	explicit        bool   // --admin was given
	asked           string // the address client chose

	// serve's bounds on admin clients (admin/limits.go).
	readHeaderTimeout, bodyTimeout time.Duration
	maxConns                       int
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	a.addr = admin.DefaultAddr
	fs.Func("admin", "admin API address: host:port, unix:/path, or off (default "+admin.DefaultAddr+"; for the CLI, the address the agentg serving with --data-dir recorded there)", func(v string) error {
		a.addr, a.explicit = v, true
		return nil
	})
	fs.StringVar(&a.tokenFile, "admin-token-file", "", "file holding the admin API's bearer token (default <data-dir>/"+admin.TokenFile+", generated on first run)")
}

// registerLimits adds serve's bounds on admin API clients.
func (a *adminFlags) registerLimits(fs *flag.FlagSet) {
	fs.DurationVar(&a.readHeaderTimeout, "admin-read-header-timeout", admin.DefaultReadHeaderTimeout, "how long an admin API client may take to send a request's head")
	fs.DurationVar(&a.bodyTimeout, "admin-body-timeout", admin.DefaultBodyTimeout, "how long an admin API client may take to send a request's whole body")
	fs.IntVar(&a.maxConns, "admin-max-conns", admin.DefaultMaxConns, "most admin API connections open at once; more wait to be accepted (-1: no cap)")
}

// checkLimits refuses bounds that would not bound anything.
func (a *adminFlags) checkLimits() error {
	for name, d := range map[string]time.Duration{"admin-read-header-timeout": a.readHeaderTimeout, "admin-body-timeout": a.bodyTimeout} {
		if d <= 0 {
			return fmt.Errorf("--%s must be positive, not %s", name, d)
		}
	}
	if a.maxConns == 0 || a.maxConns < -1 {
		return fmt.Errorf("--admin-max-conns must be a positive number, or -1 for no cap, not %d", a.maxConns)
	}
	return nil
}

// adminPlane is serve's running admin API; nil when it is off (its
// methods then do nothing).
type adminPlane struct {
	srv     *admin.Server
	ln      net.Listener
	zl      *zerolog.Logger
	hook    func(error) // serve's onReload, set by run
	dataDir string      // where its address is recorded, or ""
	where   string      // that address
}

// adminDeps is what serve hands the admin API.
type adminDeps struct {
	dataDir string
	log     *audit.Logger
	live    *rules.Live
	// reloadable: the policy is a file (not the embedded default).
	reloadable bool
	store      state.Store
	proxy      *proxy.Server
	issuer     *certs.Issuer
	approvals  admin.Approvals
	dns        *dnsServer // nil: the filter is off
}

// open listens, loads the token and builds the API, and makes the
// listener's addresses ones the proxy refuses. It does not serve yet:
// run does, once serve's reload hook exists.
func (a *adminFlags) open(d adminDeps) (*adminPlane, error) {
	if a.addr == admin.Off {
		return nil, nil
	}
	zl := d.log.Zerolog()
	token, err := a.serverToken(d.dataDir, zl)
	if err != nil {
		return nil, err
	}
	ln, err := admin.Listen(a.addr)
	if err != nil {
		return nil, err
	}
	p := &adminPlane{ln: ln, zl: zl}
	cfg := admin.Config{
		Token: token, Log: d.log, Policy: d.live, MCP: d.store, Approvals: d.approvals, ErrorLog: stdPrintf{zl},
		ReadHeaderTimeout: a.readHeaderTimeout, BodyTimeout: a.bodyTimeout, MaxConns: a.maxConns,
		Gauges: admin.Gauges{
			OpenTunnels: func() int { return d.proxy.Stats().OpenTunnels },
			Leaves: func() (uint64, uint64) {
				s := d.issuer.Stats()
				return s.Issued, s.CacheHits
			},
		},
	}
	if d.dns != nil {
		cfg.Gauges.DNSMemory = d.dns.memory
	}
	if d.reloadable {
		cfg.Reload = p.reload(d.live)
	}
	if p.srv, err = admin.New(cfg); err != nil {
		ln.Close()
		return nil, err
	}
	d.proxy.AddOwnAddr(ln.Addr())
	where := ln.Addr().String()
	if ln.Addr().Network() == "unix" {
		where = "unix:" + where
	}
	if d.dataDir != "" {
		if err := admin.WriteAddr(d.dataDir, where); err != nil {
			p.srv.Shutdown(context.Background())
			ln.Close()
			return nil, err
		}
		p.dataDir, p.where = d.dataDir, where
	}
	zl.Info().Str("admin", where).Msg("admin API listening")
	if !admin.IsLoopback(ln.Addr()) {
		zl.Warn().Str("admin", where).Msg("the admin API listens beyond loopback: its token crosses the network in plain HTTP")
	}
	return p, nil
}

// serverToken is the token the API wants: --admin-token-file's, or the
// one in the data directory, generated on first run.
func (a *adminFlags) serverToken(dataDir string, zl *zerolog.Logger) (string, error) {
	if a.tokenFile != "" {
		return admin.LoadTokenFile(a.tokenFile)
	}
	if dataDir == "" {
		return "", errors.New("admin API: no data directory for its token: set --data-dir, --admin-token-file, or --admin off")
	}
	tok, created, err := admin.LoadOrCreateToken(dataDir)
	if created {
		zl.Info().Str("file", filepath.Join(dataDir, admin.TokenFile)).Msg("created the admin API token")
	}
	return tok, err
}

// reload is the API's policy reload: serve's own, reported through the
// hook like a reload from any other trigger.
func (p *adminPlane) reload(live *rules.Live) func() error {
	return func() error {
		err := live.Reload()
		p.hook(err)
		return err
	}
}

// run serves the API; onReload is what serve does after every reload
// (the API's reload calls it too). Call it once the proxy serves.
func (p *adminPlane) run(onReload func(error)) {
	if p == nil {
		return
	}
	p.hook = onReload
	go func() {
		if err := p.srv.Serve(p.ln); err != nil {
			p.zl.Error().Err(err).Msg("admin API stopped")
		}
	}()
	p.srv.SetReady(true)
}

// observeReload counts a reload for the metrics.
func (p *adminPlane) observeReload(err error) {
	if p != nil {
		p.srv.ObserveReload(err)
	}
}

// stopping says agentg no longer takes traffic: /readyz answers 503.
func (p *adminPlane) stopping() {
	if p != nil {
		p.srv.SetReady(false)
	}
}

// shutdown ends the API (its event streams first) within grace.
func (p *adminPlane) shutdown(grace time.Duration) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		p.zl.Error().Err(err).Msg("admin API shutdown")
	}
	p.ln.Close() // when run never served it
	if p.dataDir != "" {
		admin.RemoveAddr(p.dataDir, p.where)
	}
}

// stdPrintf hands net/http's errors to the operational log.
type stdPrintf struct{ zl *zerolog.Logger }

func (s stdPrintf) Printf(format string, args ...any) {
	s.zl.Warn().Msg("admin API: " + fmt.Sprintf(format, args...))
}
