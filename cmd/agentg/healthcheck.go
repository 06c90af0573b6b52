package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/agentg/agentg/admin"
)

// runHealthcheck asks the admin API's probes, which need no token, and
// exits 0 when agentg lives (--ready: and serves), 1 otherwise. It is
// the Dockerfile's HEALTHCHECK: the distroless image has no curl.
func runHealthcheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("healthcheck", "[--admin ADDR] [--ready] [--timeout D]", stderr)
	addr := fs.String("admin", admin.DefaultAddr, "the admin API's address: host:port or unix:/path")
	ready := fs.Bool("ready", false, "ask /readyz (serving, and its event log writable) rather than /healthz (alive)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	c, err := admin.NewClient(*addr, "")
	if err != nil {
		return fmt.Errorf("--admin %q: %w", *addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := c.Probe(ctx, *ready); err != nil {
		return err
	}
	what := "alive"
	if *ready {
		what = "ready"
	}
	fmt.Fprintf(stdout, "agentg at %s: %s\n", *addr, what)
	return nil
}
