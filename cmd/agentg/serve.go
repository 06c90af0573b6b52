package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
)

//go:embed default-policy.yaml
var defaultPolicy []byte

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[--config FILE] [--listen ADDR] [--log-file FILE]", stderr)
	config := fs.String("config", "", "policy file (YAML); without it the embedded default policy is used")
	listen := fs.String("listen", "127.0.0.1:3128", "address the proxy listens on")
	logFile := fs.String("log-file", "", "append events to this file instead of stdout")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long in-flight requests and tunnels may finish after SIGTERM/SIGINT")
	poll := fs.Duration("reload-interval", 2*time.Second, "how often policy and list files are checked for changes (0 disables; SIGHUP always reloads)")
	var cf caFlags
	cf.register(fs)
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

	var out io.Writer = stdout
	if *logFile != "" {
		f, err := audit.OpenFile(*logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	logger := audit.New(out)
	zl := logger.Zerolog()

	eng, source, err := loadPolicy(*config)
	if err != nil {
		return err
	}
	live := rules.NewLive(*config, eng)

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

	srv, err := proxy.New(proxy.Config{Policy: live, Log: logger, Issuer: issuer, UpstreamRoots: roots})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	zl.Info().Str("listen", ln.Addr().String()).Str("policy", source).Str("version", version).Msg("agentg serving")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	onReload := func(err error) {
		if err != nil {
			zl.Error().Err(err).Msg("policy reload failed; the previous policy stays in force")
			return
		}
		srv.CloseIdleConnections()
		zl.Info().Str("policy", source).Msg("policy reloaded")
	}
	if *config != "" && *poll > 0 {
		go live.Watch(ctx, *poll, onReload)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
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
			sctx, cancel := context.WithTimeout(context.Background(), *grace)
			err := srv.Shutdown(sctx)
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
