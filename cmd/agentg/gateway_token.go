package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/agentg/agentg/gateway/auth"
	"github.com/agentg/agentg/internal/atomicfile"
)

// runGateway dispatches `agentg gateway`: what the MCP gateway door needs
// set up ahead of serving.
func runGateway(args []string, stdout, stderr io.Writer) error {
	return runSubcommands("gateway", args, stdout, stderr, []subcommand{
		{"token", "make a bearer token for an agent at the gateway, and the policy line holding its digest", runGatewayToken},
	})
}

// runGatewayToken is `agentg gateway token --agent NAME`: a new token,
// shown once (or written to --token-file), and the tokens: entry for the
// policy's gateway section, which holds only its SHA-256.
func runGatewayToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway token", "--agent NAME [--id ID] [--token-file FILE]", stderr)
	agent := fs.String("agent", "", "the agent the token names (required)")
	id := fs.String("id", "", "the entry's id in events and agentg check (default: where it is written)")
	file := fs.String("token-file", "", "write the token to this new file (mode 0600) instead of printing it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *agent == "" {
		fs.Usage()
		return errUsage
	}
	for _, v := range []struct{ what, s string }{{"agent name", *agent}, {"id", *id}} {
		if v.s != "" && !plainName(v.s) {
			return fmt.Errorf("bad %s %q (printable, no spaces, at most 64 bytes)", v.what, v.s)
		}
	}
	tok, digest, err := auth.NewToken()
	if err != nil {
		return err
	}
	line := "    - {agent: " + yamlScalar(*agent) + ", sha256: " + digest
	if *id != "" {
		line += ", id: " + yamlScalar(*id)
	}
	line += "}"
	if *file != "" {
		if err := atomicfile.Create(*file, []byte(tok+"\n"), 0o600); err != nil {
			return fmt.Errorf("write the token: %w", err)
		}
		fmt.Fprintf(stdout, "token for agent %s written to %s\n", *agent, *file)
	} else {
		fmt.Fprintf(stdout, "token for agent %s (shown once: agentg keeps only its digest):\n  %s\n", *agent, tok)
	}
	fmt.Fprintf(stdout, "\nadd under the policy's gateway: tokens: (then reload):\n%s\n", line)
	return nil
}

// plainName is rules' test for agent names and ids: printable, no
// spaces, at most 64 bytes. The policy checks it again at load.
func plainName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// yamlScalar quotes a value when YAML could read it as something else.
func yamlScalar(s string) string {
	if strings.ContainsAny(s, ":{}[],&*#?|<>=!%@`'\"") || strings.HasPrefix(s, "-") {
		return strconv.Quote(s)
	}
	return s
}
