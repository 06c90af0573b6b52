package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// runMCPServers is `agentg mcp servers`: the registry of the running
// agentg (GET /v1/mcp/servers): every server the policy configures with
// its state, then the servers seen through the proxy. It is the running
// agentg's view, so it asks the admin API and has no data-directory
// fallback (agentg check shows a policy's servers without one).
func runMCPServers(args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	dir, asJSON, err := jsonListFlags("mcp servers", "print the registry as the API's JSON", args, stderr, &af)
	if err != nil {
		return err
	}
	c, err := af.client(*dir)
	if err != nil {
		return fmt.Errorf("%w (the registry is the running agentg's: start agentg serve, or name it with --admin)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := c.Servers(ctx)
	if err != nil {
		return explainAPIError(af.asked, *dir, err)
	}
	if *asJSON {
		return printJSON(stdout, reg)
	}
	if len(reg.Items) == 0 {
		fmt.Fprintf(stdout, "the agentg at %s configures no MCP servers (mcp: servers: in its policy)\n", af.asked)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tURL\tSTATE\tAUTH\tTOOLS\tPINS CHANGED\tLAST SEEN (PROXY)\tLAST ERROR")
	for _, s := range reg.Items {
		url := s.URL
		if url == "" {
			url = "-"
		}
		pins := strconv.Itoa(s.PinsChanged)
		if s.PinsChangedAccepted > 0 {
			pins += fmt.Sprintf(" (+%d accepted)", s.PinsChangedAccepted)
		}
		lastErr := "-"
		if s.LastError != "" {
			lastErr = printable(s.LastError, false)
			if len(lastErr) > 80 {
				lastErr = lastErr[:77] + "..."
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, url, s.State, printable(s.Auth, false), s.Tools, pins, when(s.LastSeen), lastErr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nseen through the proxy: %d server(s) (agentg mcp inventory lists their tools)\n", len(reg.Inventory.Servers))
	return nil
}
