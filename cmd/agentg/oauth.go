package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/certs"
)

// agentg oauth: connecting the policy's oauth bindings through the
// running agentg's admin API (admin/oauth.go).
//
//	agentg oauth list
//	agentg oauth connect BINDING [--timeout 5m]
//
// connect prints the authorization URL for a person to open and waits
// until the authorization server's redirect lands on agentg's admin
// listener, or the wait ends.

func runOAuth(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("oauth", "list | connect BINDING [--timeout 5m] [--admin ADDR] [--data-dir DIR]", stderr)
	dataDir := fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the admin token is")
	timeout := fs.Duration("timeout", 5*time.Minute, "connect: how long to wait for the authorization to come back")
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] == "connect" && len(pos) != 2 || pos[0] == "list" && len(pos) != 1 || pos[0] != "connect" && pos[0] != "list" {
		fs.Usage()
		return errUsage
	}
	if *timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", *timeout)
	}
	c, err := af.client(*dataDir)
	if err != nil {
		return err
	}
	if pos[0] == "list" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		items, err := c.OAuthBindings(ctx)
		if err != nil {
			return explainAPIError(af.asked, *dataDir, err)
		}
		if len(items) == 0 {
			fmt.Fprintln(stdout, "the policy has no oauth bindings")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BINDING\tGRANT\tCONNECTED\tEXPIRES IN\tSCOPES\tISSUER")
		for _, b := range items {
			exp := "-"
			if b.Expires != nil {
				exp = time.Until(*b.Expires).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", b.Binding, b.Grant, b.Connected, exp, strings.Join(b.Scopes, " "), b.Issuer)
		}
		return tw.Flush()
	}
	binding := pos[1]
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start, err := c.OAuthConnect(ctx, binding)
	if err != nil {
		return explainAPIError(af.asked, *dataDir, err)
	}
	fmt.Fprintf(stdout, "To connect %s, open this URL in a browser and authorize agentg:\n\n%s\n\nwaiting for the authorization (up to %s)...\n", binding, start.URL, timeout.Round(time.Second))
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no authorization came back within %s: run agentg oauth connect %s again", *timeout, binding)
		case <-tick.C:
		}
		st, err := c.OAuthConnectStatus(ctx, start.ID)
		if err != nil {
			var ae *admin.APIError
			if errors.As(err, &ae) || ctx.Err() == nil {
				return explainAPIError(af.asked, *dataDir, err)
			}
			continue
		}
		switch st.State {
		case "completed":
			fmt.Fprintf(stdout, "connected: agentg holds a token for %s\n", binding)
			return nil
		case "failed", "expired":
			return fmt.Errorf("connecting %s %s: %s", binding, st.State, st.Error)
		}
	}
}
