package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/agentg/agentg/internal/buildinfo"
	"net"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/audit/otlp"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// adminPlane is the running admin API; nil when it is off (its
// methods then do nothing).
type adminPlane struct {
	srv     *admin.Server
	ln      net.Listener
	zl      *zerolog.Logger
	hook    func(error) // App.afterReload, set by run
	dataDir string      // where its address is recorded, or ""
	where   string      // that address
}

// adminDeps is what Start hands the admin API.
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
	oauth      admin.OAuth
	build      buildinfo.Info
	otlp       *otlp.Sink // nil: no OpenTelemetry export
}

// open listens, loads the token and builds the API, and makes the
// listener's addresses ones the proxy refuses. It does not serve yet:
// run does, once the app's reload hook exists.
func openAdmin(a AdminConfig, d adminDeps) (*adminPlane, error) {
	if a.Addr == admin.Off {
		return nil, nil
	}
	zl := d.log.Zerolog()
	token, err := serverToken(a.TokenFile, d.dataDir, zl)
	if err != nil {
		return nil, err
	}
	ln, err := admin.Listen(a.Addr)
	if err != nil {
		return nil, err
	}
	p := &adminPlane{ln: ln, zl: zl}
	cfg := admin.Config{
		Token: token, Log: d.log, Policy: d.live, MCP: d.store, Approvals: d.approvals, OAuth: d.oauth, ErrorLog: stdPrintf{zl},
		ReadHeaderTimeout: a.ReadHeaderTimeout, BodyTimeout: a.BodyTimeout, MaxConns: a.MaxConns,
		Gauges: admin.Gauges{
			Build:       d.build,
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
	if d.otlp != nil {
		cfg.Gauges.OTLP = d.otlp.Counts
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

// serverToken is the token the API wants: tokenFile's
// (--admin-token-file), or the one in the data directory, generated on
// first run.
func serverToken(tokenFile, dataDir string, zl *zerolog.Logger) (string, error) {
	if tokenFile != "" {
		return admin.LoadTokenFile(tokenFile)
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

// reload is the API's policy reload: the app's own, reported through the
// hook like a reload from any other trigger.
func (p *adminPlane) reload(live *rules.Live) func() error {
	return func() error {
		err := live.Reload()
		p.hook(err)
		return err
	}
}

// run serves the API; onReload is what the app does after every reload
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

// address is where the API listens, as recorded; "" when it is off.
func (p *adminPlane) address() string {
	if p == nil {
		return ""
	}
	if p.where != "" {
		return p.where
	}
	where := p.ln.Addr().String()
	if p.ln.Addr().Network() == "unix" {
		where = "unix:" + where
	}
	return where
}
