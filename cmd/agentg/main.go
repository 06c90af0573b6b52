// Command agentg is an egress firewall for AI agents: an HTTP(S) forward
// proxy that enforces one policy on every request an agent makes.
//
// This file only dispatches subcommands; each lives in its own file and
// wires packages together without holding logic of its own.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version and buildTime are stamped by a release build:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.buildTime=$(date -u +%FT%TZ)" ./cmd/agentg
//
// Unstamped, the version is the module version `go install` recorded
// (internal/buildinfo), and the build time is unknown.
var (
	version   = "dev"
	buildTime = ""
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the proxy", runServe},
		{"check", "validate a policy and show decisions for hosts", runCheck},
		{"ca", "manage the CA used for TLS interception (init, export, show, trust-env)", runCA},
		{"netsetup", "print, apply or remove the firewall rules of transparent mode (nftables, or iptables)", runNetsetup},
		{"gateway", "the MCP gateway: make a bearer token for an agent (token --agent NAME)", runGateway},
		{"mcp", "MCP state: tool-definition pins (list, accept), inventory of servers and tools", runMCP},
		{"events", "follow the running agentg's decisions (--follow), through its admin API", runEvents},
		{"approvals", "list the calls held for approval (list), through the admin API", runApprovals},
		{"approve", "approve a held call: approve ID [--scope agent-tool] [--for 10m]", runApprove},
		{"deny", "deny a held call: deny ID [--reason TEXT]", runDeny},
		{"passwd", "print the hash of an agent's password for the policy (argon2id, or --bcrypt)", runPasswd},
		{"secrets", "list the policy's secrets: sources, bindings, last use; never a value (list)", runSecrets},
		{"oauth", "OAuth for MCP servers: list the oauth bindings, connect BINDING (prints the authorization URL and waits)", runOAuth},
		{"wrap", "relay a stdio MCP server under the policy: wrap [--server NAME] [--policy FILE] -- CMD ARGS...", runWrap},
		{"healthcheck", "exit 0 when the agentg at --admin lives (--ready: serves); for HEALTHCHECK and probes", runHealthcheck},
		{"version", "print the version, VCS revision and build time (also --version)", runVersion},
		{"completion", "print a shell completion script: completion bash|zsh|fish", runCompletion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) > 0 && args[0] == completeCommand {
		complete(args[1:], stdout)
		return 0
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil, errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			case errors.As(err, new(exitStatus)):
				return int(err.(exitStatus)) // a wrapped server's own status
			default:
				fmt.Fprintf(stderr, "agentg %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "agentg: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "agentg: an egress firewall for AI agents")
	fmt.Fprintln(w, "\nUsage: agentg COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'agentg COMMAND --help' for a command's flags. Flags take one dash or two")
	fmt.Fprintln(w, "(-listen and --listen are the same flag), as in every Go program.")
}

// newFlagSet returns a FlagSet whose errors and help go to stderr and are
// returned, never os.Exit'ed, so the commands stay testable.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("agentg "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: agentg %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and turns a parse error into errUsage (the flag
// package has already printed it).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
