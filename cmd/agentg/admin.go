package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/app"
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

// config is the admin part of app.Config.
func (a *adminFlags) config() app.AdminConfig {
	return app.AdminConfig{Addr: a.addr, TokenFile: a.tokenFile,
		ReadHeaderTimeout: a.readHeaderTimeout, BodyTimeout: a.bodyTimeout, MaxConns: a.maxConns}
}
