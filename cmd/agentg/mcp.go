package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/state"
)

// runMCP dispatches `agentg mcp`: the MCP state of the running agentg,
// asked through its admin API, or, when none answers, as kept in its data
// directory (package state owns the files and their rules).
func runMCP(args []string, stdout, stderr io.Writer) error {
	return runSubcommands("mcp", args, stdout, stderr, []subcommand{
		{"pins", "list tool-definition pins, or accept a changed definition", runMCPPins},
		{"inventory", "print the MCP servers and tools agentg has seen", runMCPInventory},
		{"servers", "the registry: every configured MCP server with its state, through the admin API", runMCPServers},
		{"egress", "propose the egress lists of the servers agentg starts from what they reached (learn)", runMCPEgress},
	})
}

func runMCPPins(args []string, stdout, stderr io.Writer) error {
	return runSubcommands("mcp pins", args, stdout, stderr, []subcommand{
		{"list", "list the pins: each tool's definition hash and whether it changed", runMCPPinsList},
		{"accept", "accept the changed definition of SERVER TOOL (or SERVER.TOOL)", runMCPPinsAccept},
	})
}

type subcommand struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

// runSubcommands runs the subcommand args[0] names among subs.
func runSubcommands(parent string, args []string, stdout, stderr io.Writer, subs []subcommand) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		names := make([]string, len(subs))
		for i, s := range subs {
			names[i] = s.name
		}
		fmt.Fprintf(stderr, "Usage: agentg %s %s [flags]\n\n", parent, strings.Join(names, "|"))
		for _, s := range subs {
			fmt.Fprintf(stderr, "  %-10s %s\n", s.name, s.summary)
		}
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "agentg %s: unknown subcommand %q\n", parent, args[0])
	return errUsage
}

// dataDirFlag adds --data-dir, the directory serve and the ca commands use
// (its default is theirs: certs.DefaultDir).
func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the server keeps "+state.PinsFile+" and "+state.InventoryFile)
}

// jsonListFlags parses the flags of a listing subcommand that takes no
// arguments: --json, --data-dir and the admin API's.
func jsonListFlags(name, jsonHelp string, args []string, stderr io.Writer, af *adminFlags) (dir *string, asJSON *bool, err error) {
	fs := newFlagSet(name, "[--json] [--data-dir DIR] [--admin ADDR|off]", stderr)
	dir = dataDirFlag(fs)
	asJSON = fs.Bool("json", false, jsonHelp)
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != 0 {
		fs.Usage()
		return nil, nil, errUsage
	}
	return dir, asJSON, checkDataDir(*dir)
}

func checkDataDir(dir string) error {
	if dir == "" {
		return errors.New("no data directory: set --data-dir, XDG_DATA_HOME or HOME")
	}
	return nil
}

func runMCPPinsList(args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	dir, asJSON, err := jsonListFlags("mcp pins list", "print the pins as JSON", args, stderr, &af)
	if err != nil {
		return err
	}
	pins, live, err := fromServer(&af, *dir, (*admin.Client).Pins)
	if !live && err == nil {
		pins, err = state.ReadPins(*dir)
	}
	if errors.Is(err, iofs.ErrNotExist) {
		if *asJSON {
			return printJSON(stdout, []state.Pin{})
		}
		fmt.Fprintf(stdout, "no pins in %s yet: agentg serve pins each MCP tool when it first lists it\n", *dir)
		return nil
	}
	if err != nil {
		return err
	}
	if *asJSON {
		if pins == nil {
			pins = []state.Pin{}
		}
		return printJSON(stdout, pins)
	}
	if live && len(pins) == 0 {
		fmt.Fprintf(stdout, "the agentg at %s has no pins yet: it pins each MCP tool when it first lists it\n", af.asked)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTOOL\tSTATE\tSHA256\tPREVIOUS\tFIRST SEEN\tLAST SEEN")
	for _, p := range pins {
		prev := "-"
		if !p.Previous.IsZero() {
			prev = short(p.Previous)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Server, quoteTool(p.Tool), pinState(p), short(p.Hash), prev, when(p.FirstSeen), when(p.LastSeen))
	}
	return tw.Flush()
}

// pinState names a pin's state for people.
func pinState(p state.Pin) string {
	switch p.Result() {
	case state.PinChanged:
		return "CHANGED (not accepted)"
	case state.PinChangedAccepted:
		return "changed, accepted"
	}
	return "pinned"
}

func runMCPPinsAccept(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mcp pins accept", "SERVER TOOL | SERVER.TOOL [--data-dir DIR] [--admin ADDR|off]", stderr)
	dir := dataDirFlag(fs)
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	var server, tool string
	switch len(pos) {
	case 2:
		server, tool = pos[0], pos[1]
	case 1:
		// Server names have no dots, tool names may: gomcp.a.b is tool a.b.
		var ok bool
		if server, tool, ok = strings.Cut(pos[0], "."); !ok {
			fs.Usage()
			return errUsage
		}
	default:
		fs.Usage()
		return errUsage
	}
	if err := checkDataDir(*dir); err != nil {
		return err
	}
	p, live, err := fromServer(&af, *dir, func(c *admin.Client, ctx context.Context) (state.Pin, error) {
		return c.AcceptPin(ctx, server, tool)
	})
	if !live && err == nil {
		p, err = state.AcceptPinFile(*dir, server, tool)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "accepted tool %s of server %s: sha256 %s (was %s)\n", quoteTool(p.Tool), p.Server, p.Hash, p.Previous)
	if live {
		fmt.Fprintf(stdout, "the agentg at %s has taken it in\n", af.asked)
	} else {
		fmt.Fprintln(stdout, "a running agentg takes it in on its next reload (SIGHUP, or within --reload-interval)")
	}
	return nil
}

func runMCPInventory(args []string, stdout, stderr io.Writer) error {
	var af adminFlags
	dir, asJSON, err := jsonListFlags("mcp inventory", "print the inventory as JSON, as the server writes it", args, stderr, &af)
	if err != nil {
		return err
	}
	inv, live, err := fromServer(&af, *dir, (*admin.Client).Inventory)
	if !live && err == nil {
		inv, err = state.ReadInventory(*dir)
	}
	if errors.Is(err, iofs.ErrNotExist) {
		if *asJSON {
			return printJSON(stdout, state.Inventory{Version: 1, Servers: []state.InventoryServer{}})
		}
		fmt.Fprintf(stdout, "no MCP inventory in %s yet: agentg serve writes %s once it has seen MCP servers\n", *dir, state.InventoryFile)
		return nil
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, inv)
	}
	if live {
		fmt.Fprintf(stdout, "MCP inventory of the agentg at %s, %s: %d server(s)\n", af.asked, when(inv.Written), len(inv.Servers))
	} else {
		fmt.Fprintf(stdout, "MCP inventory written %s: %d server(s)\n", when(inv.Written), len(inv.Servers))
	}
	for _, s := range inv.Servers {
		fmt.Fprintf(stdout, "\nserver %s\n", s.Name)
		for _, u := range s.URLs {
			fmt.Fprintf(stdout, "  url        %s\n", u)
		}
		if s.Info != (state.ServerInfo{}) {
			fmt.Fprintf(stdout, "  serverInfo %q version %q (as the server reports it)\n", s.Info.Name, s.Info.Version)
		}
		if len(s.Revisions) > 0 {
			fmt.Fprintf(stdout, "  revisions  %s\n", strings.Join(s.Revisions, ", "))
		}
		fmt.Fprintf(stdout, "  seen       %s .. %s\n", when(s.FirstSeen), when(s.LastSeen))
		if s.UnlistedCalls > 0 {
			fmt.Fprintf(stdout, "  calls to tools it never listed: %d\n", s.UnlistedCalls)
		}
		if len(s.Tools) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TOOL\tCALLS\tSTATE\tSHA256\tLAST SEEN")
		for _, t := range s.Tools {
			st := "pinned"
			switch {
			case !t.Accepted:
				st = "CHANGED (not accepted)"
			case t.Changed:
				st = "changed, accepted"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", quoteTool(t.Name), t.Calls, st, short(t.Hash), when(t.LastSeen))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// short is a hash's first 16 hex digits, enough to tell definitions apart
// in a table (--json has them whole).
func short(h state.Hash) string { return h.String()[:16] }

// quoteTool quotes a tool name a server chose when printing it bare could
// mislead (spaces, control characters, empty).
func quoteTool(name string) string {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' }) || !isPrintable(name) {
		return fmt.Sprintf("%q", name)
	}
	return name
}

func isPrintable(s string) bool {
	return fmt.Sprintf("%q", s) == `"`+s+`"`
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}
