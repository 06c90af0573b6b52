package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"github.com/agentg/agentg/internal/buildinfo"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/agentg/agentg/creds/vault"
	"github.com/agentg/agentg/internal/app"
	"github.com/agentg/agentg/netsetup"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

//go:embed default-policy.yaml
var defaultPolicy []byte

// runServe is `agentg serve`: its flags become an app.Config, app.Start
// runs agentg, and the signals drive it (SIGHUP reloads, SIGTERM and
// SIGINT shut it down gracefully).
func runServe(args []string, stdout, stderr io.Writer) error {
	cfg, gc, err := parseServe(args, stdout, stderr)
	if err != nil {
		return err
	}
	gc.apply()
	// Signals are ours before agentg says it serves (app.Start logs
	// that): a SIGTERM sent on reading that line must stop it
	// gracefully, not kill it outright.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		select {
		case <-a.Done():
			a.Close()
			return a.ServeErr()
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				a.Reload() // its outcome is logged; a failed one keeps the policy in force
				continue
			}
			return a.Shutdown(context.Background(), sig.String())
		}
	}
}

// serveFlags are serve's flags before they are checked into an
// app.Config.
type serveFlags struct {
	cfg       app.Config
	mark      string
	caf       caFlags
	af        adminFlags
	df        dnsFlags
	apf       approvalFlags
	gc        gcFlags
	otlp      otlpFlags
	rootFiles []string
}

// newServeFlags registers serve's flags, with their documented defaults,
// on a new flag set.
func newServeFlags(stdout, stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	s := &serveFlags{cfg: app.Config{DefaultPolicy: defaultPolicy, Stdout: stdout, Stderr: stderr, Build: buildinfo.Read(version, buildTime)}}
	c := &s.cfg
	fs := newFlagSet("serve", "[--config FILE] [--listen ADDR] [--dns ADDR|off] [--log-file FILE]", stderr)
	fs.StringVar(&c.PolicyFile, "config", "", "policy file (YAML); without it the embedded default policy is used")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:3128", "address the proxy listens on")
	fs.StringVar(&c.LogFile, "log-file", "", "append events to this file instead of stdout")
	fs.DurationVar(&c.LogFlushInterval, "log-flush-interval", 100*time.Millisecond, "with --log-file: gather events and write them to the file at least this often (and when 64 KiB are waiting, on every operational message and on shutdown); a crash loses at most this much; 0 writes each event at once")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests and tunnels may finish after SIGTERM/SIGINT")
	fs.DurationVar(&c.ReloadInterval, "reload-interval", 2*time.Second, "how often policy and list files are checked for changes (0 disables; SIGHUP always reloads)")
	fs.DurationVar(&c.FirstBytesTimeout, "first-bytes-timeout", 10*time.Second, "how long a tunnel may take to send the first bytes (ClientHello or request head) the gate must see")
	fs.DurationVar(&c.TunnelIdleTimeout, "tunnel-idle-timeout", 5*time.Minute, "close a tunnel in which no byte has moved either way for this long (a stream that keeps sending never idles)")
	fs.IntVar(&c.MaxTunnels, "max-tunnels", 10000, "most tunnels open at once; past it a CONNECT gets 503 (-1: no cap)")
	fs.IntVar(&c.MaxTunnelsPerAgent, "max-tunnels-per-agent", 1000, "most tunnels one agent may have open; past it 503 (-1: no cap)")
	fs.DurationVar(&c.InventoryInterval, "inventory-interval", state.DefaultWriteInterval, "how often the MCP inventory ("+state.InventoryFile+" in --data-dir, what agentg mcp inventory prints) is written when it changed; it is always written on shutdown")
	fs.StringVar(&c.Transparent, "transparent", "", "also listen here for connections the network redirects to agentg (transparent mode; see agentg netsetup); off by default")
	fs.StringVar(&s.mark, "mark", strconv.Itoa(netsetup.DefaultMark), "with --transparent: the mark (SO_MARK) on agentg's own connections, which the redirect rules let pass; 0 for none")
	fs.StringVar(&c.Gateway, "gateway", "", "also serve the MCP gateway here (host:port or unix:/path): one MCP endpoint, at /mcp, for the mcp.servers entries with an endpoint; off by default")
	fs.StringVar(&c.GatewayTLSCert, "gateway-tls-cert", "", "with --gateway: serve it over TLS with this PEM certificate chain (your PKI's, which agents trust; with --gateway-tls-key); the door then asks clients for a certificate, which the policy's gateway: mtls section checks")
	fs.StringVar(&c.GatewayTLSKey, "gateway-tls-key", "", "with --gateway-tls-cert: the certificate's PEM private key")
	s.caf.register(fs)
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 30*time.Second, "how long a client may take to send a request's head, on the proxy's listeners and inside tunnels")
	fs.DurationVar(&c.BodyIdleTimeout, "body-idle-timeout", time.Minute, "give up a request body that sends nothing for this long (a long upload that keeps sending is never cut)")
	s.af.register(fs)
	s.af.registerLimits(fs)
	s.df.register(fs)
	s.apf.register(fs)
	s.gc.register(fs)
	s.otlp.register(fs)
	fs.StringVar(&c.VaultKey, "vault-key", "", "key of the token vault in --data-dir (OAuth and exchanged tokens, encrypted at rest): \"file\" (the default: vault.key there, created 0600) or a KMS URI of an RSA key that wraps the vault's data key, such as softkms:path=/etc/agentg/vault-rsa.pem")
	fs.Func("upstream-ca", "PEM file of extra roots trusted for intercepted upstreams, besides the system roots (repeatable)", func(v string) error {
		s.rootFiles = append(s.rootFiles, v)
		return nil
	})
	return fs, s
}

// parseServe parses serve's flags into the app.Config they describe and
// refuses values that would not mean anything (naming the flag). The
// collector's setting is returned apart: it is the process's, not the
// app's.
func parseServe(args []string, stdout, stderr io.Writer) (app.Config, gcFlags, error) {
	fs, s := newServeFlags(stdout, stderr)
	if err := parseFlags(fs, args); err != nil {
		return app.Config{}, gcFlags{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return app.Config{}, gcFlags{}, errUsage
	}
	cfg, err := s.check()
	return cfg, s.gc, err
}

// check turns the parsed flags into the config, or says which is wrong.
func (s *serveFlags) check() (app.Config, error) {
	c := s.cfg
	var err error
	if c.DNS, err = s.df.list(); err != nil {
		return app.Config{}, err
	}
	if err := s.af.checkLimits(); err != nil {
		return app.Config{}, err
	}
	// In a fixed order, so that the first bad flag is the one named.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"first-bytes-timeout", c.FirstBytesTimeout}, {"tunnel-idle-timeout", c.TunnelIdleTimeout}, {"inventory-interval", c.InventoryInterval},
		{"read-header-timeout", c.ReadHeaderTimeout}, {"body-idle-timeout", c.BodyIdleTimeout}} {
		if d.v <= 0 {
			return app.Config{}, fmt.Errorf("--%s must be positive, not %s", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"max-tunnels", c.MaxTunnels}, {"max-tunnels-per-agent", c.MaxTunnelsPerAgent}} {
		if n.v == 0 || n.v < -1 {
			return app.Config{}, fmt.Errorf("--%s must be a positive number, or -1 for no cap, not %d", n.name, n.v)
		}
	}
	if c.Transparent != "" {
		m, err := strconv.ParseUint(s.mark, 0, 31)
		if err != nil {
			return app.Config{}, fmt.Errorf("--mark %q: a number (0x4147 or 16711), 0 for none", s.mark)
		}
		c.Mark = int(m)
	}
	if c.LogFlushInterval < 0 {
		return app.Config{}, fmt.Errorf("--log-flush-interval must not be negative, not %s", c.LogFlushInterval)
	}
	if c.Approvals, err = s.apf.config(); err != nil {
		return app.Config{}, err
	}
	if c.OTLP, err = s.otlp.config(); err != nil {
		return app.Config{}, err
	}
	if _, err := vault.ParseKeySource(c.VaultKey); err != nil {
		return app.Config{}, fmt.Errorf("--vault-key: %w", err)
	}
	c.CA = s.caf.config()
	c.Admin = s.af.config()
	c.UpstreamCAFiles = s.rootFiles
	return c, nil
}

// loadPolicy loads the policy file, or the embedded default without one
// (what serve would serve; check shows its decisions).
func loadPolicy(path string) (*rules.Engine, string, error) {
	return app.LoadPolicy(path, defaultPolicy)
}
