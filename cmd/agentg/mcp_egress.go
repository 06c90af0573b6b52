package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/rules"
)

// runMCPEgress dispatches `agentg mcp egress`.
func runMCPEgress(args []string, stdout, stderr io.Writer) error {
	return runSubcommands("mcp egress", args, stdout, stderr, []subcommand{
		{"learn", "propose each command server's egress list from the hosts it was seen to reach", runMCPEgressLearn},
	})
}

// runMCPEgressLearn reads the events of what servers agentg started
// reached (agent server:NAME: the running agentg's recent events, or a
// log file) and prints, per server, the egress list those hosts make, for
// the policy's mcp.servers entry. Hosts the floor denied are listed
// apart: they are what the server tried, not what it got.
func runMCPEgressLearn(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mcp egress learn", "[--server NAME] [--log-file FILE | --admin ADDR]", stderr)
	server := fs.String("server", "", "only this server (default: every server seen)")
	logFile := fs.String("log-file", "", "read the events from this log file (default: the running agentg's recent events, through its admin API)")
	dataDir := fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the admin token is")
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return errUsage
	}
	var seen egressSeen
	if *logFile != "" {
		f, err := os.Open(*logFile)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			seen.add(sc.Bytes(), *server)
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", *logFile, err)
		}
	} else {
		c, err := af.client(*dataDir)
		if err != nil {
			return fmt.Errorf("%w (or give --log-file)", err)
		}
		var f admin.EventFilter
		if *server != "" {
			f.Agents = []string{rules.ServerAgent(*server)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = c.Events(ctx, admin.EventsRequest{Filter: f, Last: admin.DefaultRecentEvents}, nil, func(e admin.StreamEvent) error {
			if e.Type != "dropped" {
				seen.add(e.Data, *server)
			}
			return nil
		})
		if err != nil {
			return explainAPIError(c.Addr(), *dataDir, err)
		}
	}
	_, err = io.WriteString(stdout, seen.proposal())
	return err
}

// egressSeen is what each server was seen to reach: host -> allowed.
type egressSeen map[string]map[string]bool

// add takes one event line: a request or tunnel of a server's own
// identity, or a tool's first egress to a host.
func (s *egressSeen) add(line []byte, only string) {
	var ev struct {
		Kind, Agent, Host, Decision, Rule, Action string
	}
	if json.Unmarshal(line, &ev) != nil || ev.Host == "" {
		return
	}
	server, ok := rules.ServerOfAgent(ev.Agent)
	if !ok || only != "" && server != only {
		return
	}
	switch {
	case ev.Kind == "http" || ev.Kind == "connect":
	case ev.Kind == "mcp" && ev.Action == "egress-new":
		ev.Decision = "allow"
	default:
		return
	}
	if *s == nil {
		*s = egressSeen{}
	}
	hosts := (*s)[server]
	if hosts == nil {
		hosts = map[string]bool{}
		(*s)[server] = hosts
	}
	hosts[ev.Host] = hosts[ev.Host] || ev.Decision == "allow"
}

// proposal is the egress lists as policy text.
func (s egressSeen) proposal() string {
	if len(s) == 0 {
		return "# no egress of a server agentg started was seen\n"
	}
	var b strings.Builder
	servers := make([]string, 0, len(s))
	for name := range s {
		servers = append(servers, name)
	}
	sort.Strings(servers)
	for _, name := range servers {
		var got, denied []string
		for h, ok := range s[name] {
			if ok {
				got = append(got, h)
			} else {
				denied = append(denied, h)
			}
		}
		sort.Strings(got)
		sort.Strings(denied)
		fmt.Fprintf(&b, "# mcp server %s: the hosts it was seen to reach\n  - name: %s\n    egress: [%s]\n", name, name, strings.Join(got, ", "))
		if len(denied) > 0 {
			fmt.Fprintf(&b, "    # denied when tried (add only what it needs): %s\n", strings.Join(denied, ", "))
		}
	}
	return b.String()
}
