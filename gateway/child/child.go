package child

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// Child is one command server under the supervisor: a process started
// again when it exits. What the gateway talks to is its current run,
// Proc: one MCP peer over stdio, from its start to its exit. A new run
// is a new MCP session (the server remembers nothing of the last), so a
// user of a Proc that ends starts over with Current: initialize again.
type Child struct {
	sup  *Supervisor
	spec rules.StdioServer
	eng  atomic.Pointer[rules.Engine] // the policy of its next start (secrets)

	mu       sync.Mutex
	cur      *Proc
	starts   int           // processes started
	lastExit string        // how the last one ended
	next     chan struct{} // closed when cur changes
	stopped  bool
	quit     chan struct{}
	done     chan struct{} // closed when the run loop has ended
}

// Proc is one run of a child process. Send writes one message (a line);
// Recv gives what the server writes, one line at a time, until it exits
// (then the channel is closed and Err says how it ended).
type Proc struct {
	Server  string
	PID     int
	Started time.Time

	password string
	in       *lineWriter
	stdin    interface{ Close() error }
	out      chan Line
	done     chan struct{}
	err      error
}

// Line is one line the server wrote: a message, or (Err set) a line
// that could not be read whole (ErrLineTooLong), which must be refused,
// never passed on.
type Line struct {
	Msg []byte
	Err error
}

// MaxLine bounds a line read from a child when the policy says nothing.
const MaxLine = 4 << 20

// Send writes one JSON-RPC message to the server.
func (p *Proc) Send(msg []byte) error {
	select {
	case <-p.done:
		return fmt.Errorf("mcp server %s: %w", p.Server, ErrExited)
	default:
	}
	return p.in.write(msg)
}

// Recv is what the server writes.
func (p *Proc) Recv() <-chan Line { return p.out }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended, once Done.
func (p *Proc) Err() error { return p.err }

// ErrExited is the error of a Send to a process that has exited.
var ErrExited = errors.New("the server process has exited")

func newChild(s *Supervisor, spec rules.StdioServer, eng *rules.Engine) *Child {
	c := &Child{sup: s, spec: spec, next: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	c.eng.Store(eng)
	return c
}

// Name is the server's policy name.
func (c *Child) Name() string { return c.spec.Name }

// Current waits for a running process (one starting after a restart
// included) and returns it, or ctx's error.
func (c *Child) Current(ctx context.Context) (*Proc, error) {
	for {
		c.mu.Lock()
		p, next, stopped := c.cur, c.next, c.stopped
		c.mu.Unlock()
		if stopped {
			return nil, fmt.Errorf("mcp server %s: stopped", c.spec.Name)
		}
		if p != nil {
			select {
			case <-p.done:
			default:
				return p, nil
			}
		}
		select {
		case <-next:
		case <-ctx.Done():
			return nil, fmt.Errorf("mcp server %s: waiting for its process: %w", c.spec.Name, ctx.Err())
		}
	}
}

func (c *Child) current() *Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *Child) setCurrent(p *Proc) {
	c.mu.Lock()
	c.cur = p
	c.starts++
	close(c.next)
	c.next = make(chan struct{})
	c.mu.Unlock()
}

func (c *Child) stop() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.quit)
		close(c.next)
		c.next = make(chan struct{})
	}
	c.mu.Unlock()
}

// run starts the process, waits for its exit and starts it again after
// the backoff, until stopped.
func (c *Child) run() {
	defer close(c.done)
	b := c.sup.cfg.Backoff
	delay := b.Min
	for {
		if c.isStopped() {
			return
		}
		started := time.Now()
		err := c.once()
		if c.isStopped() {
			return
		}
		if time.Since(started) >= b.Reset {
			delay = b.Min
		}
		c.event("server-restart", "report", fmt.Sprintf("mcp server %s: restarting in %s", c.spec.Name, delay), err)
		select {
		case <-c.quit:
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, b.Max)
	}
}

func (c *Child) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// once runs the process one time, to its exit.
func (c *Child) once() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(err error) error {
		c.event("server-start", "deny", "mcp server "+c.spec.Name+" could not start: "+err.Error(), err)
		return err
	}
	path, err := c.sup.cfg.LookPath(c.spec.Command[0])
	if err != nil {
		return fail(err)
	}
	pw, err := newPassword()
	if err != nil {
		return fail(err)
	}
	env, held, err := environ(ctx, c.eng.Load(), c.spec, proxyURL(c.sup.cfg.Proxy, c.spec.Name, pw))
	if err != nil {
		return fail(err)
	}
	held = append(held, heldSecret{name: "proxy password", value: pw})
	cmd := exec.Command(path, c.spec.Command[1:]...)
	cmd.Env, cmd.Dir = env, c.spec.Dir
	cmd.Stderr = &stderrLog{c: c, held: held} // the server's logs, as operational lines, its secrets masked
	cmd.WaitDelay = c.sup.cfg.Grace
	// Its own process group: a signal meant for agentg's group (a
	// terminal's Ctrl-C) does not reach it; agentg stops it itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	p := &Proc{Server: c.spec.Name, PID: cmd.Process.Pid, Started: time.Now(), password: pw,
		in: &lineWriter{w: in}, stdin: in, out: make(chan Line, 64), done: make(chan struct{})}
	c.event("server-start", "allow", fmt.Sprintf("mcp server %s started (pid %d)", c.spec.Name, p.PID), nil)
	c.setCurrent(p)

	stopping := make(chan struct{})
	go func() {
		select {
		case <-c.quit:
		case <-stopping:
			return
		}
		in.Close()
		for _, sig := range []os.Signal{syscall.SIGTERM, os.Kill} {
			select {
			case <-stopping:
				return
			case <-time.After(c.sup.cfg.Grace):
				cmd.Process.Signal(sig)
			}
		}
	}()
	max := c.maxLine()
	readErr := Lines(out, max, func(line []byte, err error) {
		l := Line{Err: err}
		if err == nil {
			l.Msg = append([]byte(nil), line...)
		}
		select {
		case p.out <- l:
		case <-c.quit: // stopping, and no one reads: do not hold the exit up
		}
	})
	werr := cmd.Wait()
	close(stopping)
	p.err = fmt.Errorf("mcp server %s: %s", c.spec.Name, exitText(werr, cmd.ProcessState))
	if readErr != nil && werr == nil {
		p.err = fmt.Errorf("mcp server %s: stdout: %w", c.spec.Name, readErr)
	}
	close(p.out)
	close(p.done)
	c.mu.Lock()
	c.lastExit = p.err.Error()
	c.mu.Unlock()
	c.event("server-exit", "report", p.err.Error(), nil)
	return p.err
}

func (c *Child) maxLine() int {
	if m := c.eng.Load().MCP().MaxMessage; m > 0 {
		return int(m)
	}
	return MaxLine
}

// event writes a supervisor event about the child (kind mcp, door
// gateway, action server-start, server-exit or server-restart).
func (c *Child) event(action, decision, reason string, err error) {
	log := c.sup.cfg.Log
	ev := &audit.Event{ID: log.NewID(), Time: time.Now(), Kind: "mcp", Agent: rules.ServerAgent(c.spec.Name),
		Door: "gateway", Decision: decision, Rule: "mcp:supervisor", RuleSource: c.spec.Source, Reason: reason,
		MCP: &audit.MCP{Action: action, Server: c.spec.Name}}
	if err != nil {
		ev.Error = err.Error()
	}
	log.Log(ev)
}

// stderrLog passes a child's stderr to agentg's operational log, line by
// line, naming the server.
type stderrLog struct {
	c    *Child
	held []heldSecret // values the child holds: a line that prints one shows its name instead
	buf  []byte
}

func (w *stderrLog) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := indexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		for _, s := range w.held {
			line = strings.ReplaceAll(line, s.value, "[secret "+s.name+"]")
		}
		w.c.sup.cfg.Log.Zerolog().Info().Str("server", w.c.spec.Name).Str("stderr", line).Msg("mcp server stderr")
	}
	if len(w.buf) > 64<<10 {
		w.buf = w.buf[:0] // a line without an end is not kept without bound
	}
	return len(p), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// Status is what the registry shows of a child.
type Status struct {
	Server   string    `json:"server"`
	Running  bool      `json:"running"`
	PID      int       `json:"pid,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Starts   int       `json:"starts"`              // processes started since agentg started
	LastExit string    `json:"last_exit,omitempty"` // how the last one ended, with its status
}

// Status is the child's state now.
func (c *Child) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Server: c.spec.Name, Starts: c.starts, LastExit: c.lastExit}
	if p := c.cur; p != nil {
		select {
		case <-p.done:
		default:
			st.Running, st.PID, st.Started = true, p.PID, p.Started
		}
	}
	return st
}
