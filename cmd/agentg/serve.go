package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/internal/filetrust"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/netsetup"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
	"github.com/rs/zerolog"
)

//go:embed default-policy.yaml
var defaultPolicy []byte

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[--config FILE] [--listen ADDR] [--dns ADDR|off] [--log-file FILE]", stderr)
	config := fs.String("config", "", "policy file (YAML); without it the embedded default policy is used")
	listen := fs.String("listen", "127.0.0.1:3128", "address the proxy listens on")
	logFile := fs.String("log-file", "", "append events to this file instead of stdout")
	logFlush := fs.Duration("log-flush-interval", 100*time.Millisecond, "with --log-file: gather events and write them to the file at least this often (and when 64 KiB are waiting, on every operational message and on shutdown); a crash loses at most this much; 0 writes each event at once")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long in-flight requests and tunnels may finish after SIGTERM/SIGINT")
	poll := fs.Duration("reload-interval", 2*time.Second, "how often policy and list files are checked for changes (0 disables; SIGHUP always reloads)")
	firstBytes := fs.Duration("first-bytes-timeout", 10*time.Second, "how long a tunnel may take to send the first bytes (ClientHello or request head) the gate must see")
	tunnelIdle := fs.Duration("tunnel-idle-timeout", 5*time.Minute, "close a tunnel in which no byte has moved either way for this long (a stream that keeps sending never idles)")
	maxTunnels := fs.Int("max-tunnels", 10000, "most tunnels open at once; past it a CONNECT gets 503 (-1: no cap)")
	maxPerAgent := fs.Int("max-tunnels-per-agent", 1000, "most tunnels one agent may have open; past it 503 (-1: no cap)")
	inventoryEvery := fs.Duration("inventory-interval", state.DefaultWriteInterval, "how often the MCP inventory ("+state.InventoryFile+" in --data-dir, what agentg mcp inventory prints) is written when it changed; it is always written on shutdown")
	transparent := fs.String("transparent", "", "also listen here for connections the network redirects to agentg (transparent mode; see agentg netsetup); off by default")
	mark := fs.String("mark", strconv.Itoa(netsetup.DefaultMark), "with --transparent: the mark (SO_MARK) on agentg's own connections, which the redirect rules let pass; 0 for none")
	var cf caFlags
	cf.register(fs)
	readHeader := fs.Duration("read-header-timeout", 30*time.Second, "how long a client may take to send a request's head, on the proxy's listeners and inside tunnels")
	bodyIdle := fs.Duration("body-idle-timeout", time.Minute, "give up a request body that sends nothing for this long (a long upload that keeps sending is never cut)")
	var af adminFlags
	af.register(fs)
	af.registerLimits(fs)
	var df dnsFlags
	df.register(fs)
	var apf approvalFlags
	apf.register(fs)
	var gc gcFlags
	gc.register(fs)
	var rootFiles []string
	fs.Func("upstream-ca", "PEM file of extra roots trusted for intercepted upstreams, besides the system roots (repeatable)", func(v string) error {
		rootFiles = append(rootFiles, v)
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	gc.apply()
	dnsAddrs, err := df.list()
	if err != nil {
		return err
	}
	if err := af.checkLimits(); err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{"first-bytes-timeout": *firstBytes, "tunnel-idle-timeout": *tunnelIdle, "inventory-interval": *inventoryEvery,
		"read-header-timeout": *readHeader, "body-idle-timeout": *bodyIdle} {
		if d <= 0 {
			return fmt.Errorf("--%s must be positive, not %s", name, d)
		}
	}
	for name, n := range map[string]int{"max-tunnels": *maxTunnels, "max-tunnels-per-agent": *maxPerAgent} {
		if n == 0 || n < -1 {
			return fmt.Errorf("--%s must be a positive number, or -1 for no cap, not %d", name, n)
		}
	}

	markVal := 0
	if *transparent != "" {
		m, err := strconv.ParseUint(*mark, 0, 31)
		if err != nil {
			return fmt.Errorf("--mark %q: a number (0x4147 or 16711), 0 for none", *mark)
		}
		markVal = int(m)
	}

	if *logFlush < 0 {
		return fmt.Errorf("--log-flush-interval must not be negative, not %s", *logFlush)
	}
	var out io.Writer = stdout
	// A log that cannot be written is said on stderr (audit's sink).
	logOpts := audit.Options{Sink: "stdout", Stderr: stderr}
	if *logFile != "" {
		logOpts.Sink = "file"
		f, err := audit.OpenFile(*logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
		logOpts.FlushInterval = *logFlush
	}
	logger := audit.NewWithOptions(out, logOpts)
	// Deferred before every other shutdown step, so it runs after them:
	// the buffered events, and theirs, are written before the file closes.
	defer logger.Close()
	zl := logger.Zerolog()

	eng, source, err := loadPolicy(*config)
	if err != nil {
		return err
	}
	live := rules.NewLive(*config, eng)

	// The token, the CA, the MCP state and the held approvals live in the
	// data directory: agentg trusts what is there as its own, so one
	// another local user could write to is refused before anything in it
	// is read (filetrust).
	if cf.dataDir != "" {
		if err := filetrust.CheckDir(cf.dataDir); err != nil {
			return err
		}
	}
	ca, created, err := cf.load(true)
	if err != nil {
		return err
	}
	defer ca.Close()
	if created {
		zl.Info().Str("dir", cf.dataDir).Str("fingerprint", ca.Fingerprint()).Msg("created a new CA; trust it with: agentg ca trust-env")
	}
	issuer, err := certs.NewIssuer(ca, certs.IssuerOptions{})
	if err != nil {
		return err
	}
	roots, err := upstreamRoots(rootFiles)
	if err != nil {
		return err
	}

	store, err := state.NewMemory(state.Options{
		DataDir:       cf.dataDir,
		WriteInterval: *inventoryEvery,
		OnError:       func(err error) { zl.Error().Err(err).Msg("mcp state") },
	})
	if err != nil {
		return fmt.Errorf("mcp state in %s: %w", cf.dataDir, err)
	}
	defer func() {
		// The last word on the inventory and the pins' last-seen times,
		// after the proxy has stopped: nothing changes them any more.
		if err := store.Close(); err != nil {
			zl.Error().Err(err).Msg("writing the MCP inventory and pins on shutdown failed")
		}
	}()
	apv, err := apf.open(cf.dataDir, logger, zl)
	if err != nil {
		return err
	}
	defer apv.close() // after the proxy: what is still held is denied first (see below)
	guard := &mcp.Guard{Log: logger, State: store, Limits: limit.NewRates(limit.Options{}),
		Approvals: apv.broker, KeepAlive: apf.keepAlive}

	// The DNS filter: its IP→name bindings are what the transparent
	// listener asks (bindings.NamesFor), its cache the proxy resolves
	// through.
	bindings := state.NewBindings(state.BindingsOptions{})
	dnsSrv, err := startDNS(dnsAddrs, live, logger, bindings, roots, markVal)
	if err != nil {
		return err
	}
	defer dnsSrv.shutdown(context.Background())

	srv, err := proxy.New(proxy.Config{
		Policy: live, Log: logger, Issuer: issuer, UpstreamRoots: roots, MCP: guard, Approvals: apv.broker,
		FirstBytesTimeout: *firstBytes, TunnelIdleTimeout: *tunnelIdle,
		MaxTunnels: *maxTunnels, MaxTunnelsPerAgent: *maxPerAgent, Mark: markVal, Bindings: bindings,
		Resolver: dnsSrv.resolver(), ReadHeaderTimeout: *readHeader, BodyIdleTimeout: *bodyIdle,
	})
	if err != nil {
		return err
	}
	for _, a := range dnsSrv.ownAddrs() {
		srv.AddOwnAddr(a)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	adm, err := af.open(adminDeps{dataDir: cf.dataDir, log: logger, live: live, reloadable: *config != "", store: store, proxy: srv, issuer: issuer, approvals: apv.broker, dns: dnsSrv})
	if err != nil {
		ln.Close()
		return err
	}
	defer adm.shutdown(*grace)
	if *transparent != "" {
		// Before the serving line: once agentg says it serves, both
		// listeners do, and the loop check has passed.
		if err := serveTransparent(context.Background(), srv, *transparent, markVal, zl); err != nil {
			ln.Close()
			srv.Shutdown(context.Background())
			return err
		}
	}
	// Signals are ours before agentg says it serves: a SIGTERM sent on
	// reading that line must stop it gracefully, not kill it outright.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	zl.Info().Str("listen", ln.Addr().String()).Strs("dns", dnsSrv.listening()).Str("policy", source).Str("version", version).Msg("agentg serving")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	onReload := func(err error) {
		adm.observeReload(err)
		if perr := store.Reload(); perr != nil {
			zl.Error().Err(perr).Msg("reloading MCP tool pins failed; the pins in force stay")
		}
		if err != nil {
			zl.Error().Err(err).Msg("policy reload failed; the previous policy stays in force")
			return
		}
		zl.Info().Str("policy", source).Msg("policy reloaded") // open tunnels are re-decided by the proxy itself
	}
	if *config != "" && *poll > 0 {
		go live.Watch(ctx, *poll, onReload)
	}
	if *poll > 0 {
		// Pins accepted with `agentg mcp pins accept` take effect on
		// the next poll, like a policy edit.
		go func() {
			t := time.NewTicker(*poll)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := store.Reload(); err != nil {
						zl.Error().Err(err).Msg("reloading MCP tool pins failed; the pins in force stay")
					}
				}
			}
		}()
	}

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	adm.run(onReload)
	for {
		select {
		case err := <-done:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if *config == "" {
					zl.Info().Msg("SIGHUP: the embedded default policy has nothing to reload")
					continue
				}
				onReload(live.Reload())
				continue
			}
			zl.Info().Str("signal", sig.String()).Dur("grace", *grace).Msg("shutting down")
			adm.stopping()
			apv.broker.Shutdown() // held calls get their error now, not at the grace's end
			sctx, cancel := context.WithTimeout(context.Background(), *grace)
			err := srv.Shutdown(sctx)
			dnsSrv.shutdown(sctx)
			cancel()
			<-done
			return err
		}
	}
}

// loadPolicy loads the policy file, or the embedded default without one.
func loadPolicy(path string) (*rules.Engine, string, error) {
	if path == "" {
		e, err := rules.Parse("embedded:default-policy.yaml", defaultPolicy)
		return e, "embedded:default-policy.yaml", err
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
