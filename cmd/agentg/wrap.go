package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/gateway/child"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// exitStatus is the status a command exits with when it is not agentg's
// own verdict: a wrapped server's.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runWrap is `agentg wrap`: between an agent that launches a stdio MCP
// server and that server. stdin and stdout are the agent's MCP channel:
// nothing but MCP messages is ever written to stdout; agentg's own words
// go to stderr with the server's.
func runWrap(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("wrap", "[--server NAME] [--agent NAME] [--policy FILE | --admin ADDR] [--log-file FILE] -- CMD ARGS...", stderr)
	server := fs.String("server", "", "the server's name in the policy's mcp.servers and rules (default: CMD's base name)")
	agent := fs.String("agent", "local", "the agent's name in rules and events")
	policy := fs.String("policy", "", "the policy file (default: the running agentg's, found through its admin API)")
	logFile := fs.String("log-file", "", "write events to this file (default: to the running agentg's log, through its admin API)")
	grace := fs.Duration("grace", child.DefaultGrace, "how long the server has to exit after the agent closes stdin, and again after SIGTERM")
	dataDir := fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the admin token is")
	stateDir := fs.String("state-dir", "", "where the wrap keeps its tool pins and inventory across runs (default <data-dir>/wrap/<server>; \"off\": in memory only)")
	var af adminFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(stderr, "agentg wrap: no command to wrap (agentg wrap [flags] -- CMD ARGS...)")
		return errUsage
	}
	if *server == "" {
		*server = filepath.Base(argv[0])
		if !rules.ValidServerName(*server) {
			return fmt.Errorf("the command's name %q cannot name a server in the policy: give --server NAME", *server)
		}
	}
	if !rules.ValidServerName(*server) {
		return fmt.Errorf("--server %q: 1 to 64 letters, digits, '_' or '-' (no dots: a tool pattern's server part ends at the first dot)", *server)
	}
	if *grace <= 0 {
		return fmt.Errorf("--grace must be positive, not %s", *grace)
	}
	// The admin API is asked only when something must go through it.
	var c *admin.Client
	if *policy == "" || *logFile == "" {
		var err error
		if c, err = af.client(*dataDir); err != nil {
			return fmt.Errorf("%w (give --policy and --log-file to wrap without a running agentg)", err)
		}
	}
	eng, err := wrapPolicy(*policy, c)
	if err != nil {
		return err
	}
	log, closeLog, err := wrapLog(*logFile, c, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	// Pins persist per server, apart from the running agentg's (which
	// writes its own inventory): a wrap of the same server sees a tool
	// that changed since its last run. Two wraps of one server share the
	// pins file under its lock.
	switch *stateDir {
	case "":
		*stateDir = filepath.Join(*dataDir, "wrap", *server)
	case "off":
		*stateDir = ""
	}
	st, err := state.NewMemory(state.Options{DataDir: *stateDir})
	if err != nil {
		return fmt.Errorf("mcp state in %s: %w", *stateDir, err)
	}
	defer st.Close()
	guard := &mcp.Guard{Log: log, State: st, Limits: limit.NewRates(limit.Options{})}
	if c != nil {
		// Calls an approve rule holds are put to the running agentg's
		// approvers; without one they are denied (nothing could approve).
		b, closeApprovals, err := wrapApprovals(c, stderr)
		if err != nil {
			return err
		}
		defer closeApprovals()
		guard.Approvals = b
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = stderr // the server's logs pass through
	r := &child.Relay{Guard: guard, Cmd: cmd, From: os.Stdin, To: stdout, Grace: *grace,
		Exchange: mcp.Exchange{Engine: eng, Agent: *agent, Server: *server, Door: admin.DoorWrap,
			Client: "stdio", URL: "stdio:" + argv[0], Parent: ""}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			r.Signal(sig) // the server decides what a signal means to it
		}
	}()
	code, err := r.Run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "agentg wrap: %v\n", err)
	}
	if code != 0 {
		return exitStatus(code)
	}
	return nil
}

// wrapPolicy loads the policy a wrap decides by: the file given, or the
// running agentg's (its admin API names the file; the wrap reads it).
func wrapPolicy(path string, c *admin.Client) (*rules.Engine, error) {
	if path == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pf, err := c.PolicyFile(ctx)
		if err != nil {
			return nil, fmt.Errorf("asking the running agentg for its policy: %w", err)
		}
		path = pf.Path
	}
	return rules.Load(path)
}

// wrapLog is where a wrap's events go: the file given, or the running
// agentg's log through its admin API.
func wrapLog(path string, c *admin.Client, stderr io.Writer) (*audit.Logger, func(), error) {
	if path != "" {
		f, err := audit.OpenFile(path)
		if err != nil {
			return nil, nil, err
		}
		return audit.New(f), func() { f.Close() }, nil
	}
	if c == nil {
		return nil, nil, errors.New("no log file and no running agentg for the events")
	}
	w := admin.NewIngestWriter(c, func(err error) { fmt.Fprintf(stderr, "agentg wrap: %v\n", err) })
	return audit.New(w), func() { w.Close() }, nil
}

// wrapApprovals is the wrap's own approvals broker, whose every hold is
// decided by the running agentg's approvers (admin.RemoteApprovals). Its
// own approval events are not logged: the running agentg's hold writes
// them, once, naming the call's event.
func wrapApprovals(c *admin.Client, stderr io.Writer) (*approval.Broker, func(), error) {
	st, err := approval.NewMemoryStore(approval.StoreOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("approvals: %w", err)
	}
	ra := &admin.RemoteApprovals{C: c, OnError: func(err error) { fmt.Fprintf(stderr, "agentg wrap: %v\n", err) }}
	b, err := approval.New(approval.Config{Store: st, Log: audit.New(io.Discard), Notify: ra})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	ra.Broker = b
	return b, func() { ra.Close(); st.Close() }, nil
}
