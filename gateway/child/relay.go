package child

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/agentg/agentg/dissect/mcp"
)

// Relay is `agentg wrap`: it starts Cmd, the stdio server an agent
// launched it in place of, and moves the agent's messages (From, To: the
// wrap's own stdin and stdout) and the server's through one guard
// session, line by line. The server's stderr is the caller's to set on
// Cmd (the wrap passes it through).
type Relay struct {
	Guard    *mcp.Guard
	Exchange mcp.Exchange // who, the server's policy name, Door "wrap"
	Cmd      *exec.Cmd    // not started; Stdin and Stdout are the relay's
	From     io.Reader
	To       io.Writer
	// Grace is how long the server has to exit once the agent closed its
	// side (stdin closed), and again after SIGTERM, before SIGKILL;
	// 0: DefaultGrace.
	Grace time.Duration

	mu   sync.Mutex
	proc *os.Process
}

// DefaultGrace is Relay's and the Supervisor's default shutdown grace.
const DefaultGrace = 5 * time.Second

// Run starts the server and relays until it exits; the result is its
// exit status as a shell gives it (128+N for a signal N). ctx ending
// stops the server as the agent closing its side does.
func (r *Relay) Run(ctx context.Context) (int, error) {
	grace := r.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	in, err := r.Cmd.StdinPipe()
	if err != nil {
		return 1, fmt.Errorf("wrap: %w", err)
	}
	out, err := r.Cmd.StdoutPipe()
	if err != nil {
		return 1, fmt.Errorf("wrap: %w", err)
	}
	r.Cmd.WaitDelay = grace
	if err := r.Cmd.Start(); err != nil {
		return 127, fmt.Errorf("wrap: start %s: %w", r.Cmd.Path, err)
	}
	r.mu.Lock()
	r.proc = r.Cmd.Process
	r.mu.Unlock()
	toServer := &lineWriter{w: in}
	toClient := &lineWriter{w: r.To}
	sess := r.Guard.NewSession(r.Exchange, mcp.SessionIO{ToServer: toServer.write, ToClient: toClient.write})
	max := sess.MaxLine()

	serverDone := make(chan error, 1)
	go func() {
		serverDone <- Lines(out, max, func(line []byte, err error) {
			if err != nil {
				sess.RefuseLine(false, err)
				return
			}
			sess.FromServer(line)
		})
	}()
	agentDone := make(chan struct{})
	go func() {
		defer close(agentDone)
		Lines(r.From, max, func(line []byte, err error) {
			if err != nil {
				sess.RefuseLine(true, err)
				return
			}
			sess.FromClient(line)
		})
	}()
	stopped := make(chan struct{})
	go func() {
		// The agent closed its side (or ctx ended): the stdio way to
		// stop a server is to close its stdin, then SIGTERM, then
		// SIGKILL, each after the grace.
		select {
		case <-agentDone:
		case <-ctx.Done():
		case <-stopped:
			return
		}
		in.Close()
		for _, sig := range []os.Signal{syscall.SIGTERM, os.Kill} {
			select {
			case <-stopped:
				return
			case <-time.After(grace):
				r.Signal(sig)
			}
		}
	}()
	readErr := <-serverDone
	werr := r.Cmd.Wait()
	close(stopped)
	sess.Close(fmt.Errorf("the server exited (%s)", r.Cmd.ProcessState))
	code := exitCode(r.Cmd.ProcessState)
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return code, fmt.Errorf("wrap: %w", werr)
	}
	if readErr != nil {
		return code, fmt.Errorf("wrap: the server's stdout: %w", readErr)
	}
	return code, nil
}

// Signal passes sig to the server, once it has started.
func (r *Relay) Signal(sig os.Signal) {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p != nil {
		p.Signal(sig)
	}
}

// exitCode is a process's status as a shell reports it.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
