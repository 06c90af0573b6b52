package testenv

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AgentgConfig says how to run `agentg serve`.
type AgentgConfig struct {
	// Binary is the agentg to run; empty builds one (AgentgBinary).
	Binary string
	// Dir holds whatever of the files below is not given: the policy
	// (policy.yaml), the log (agentg.log) and the data directory (data).
	// It is created when missing; it may be empty only when LogFile and
	// DataDir are both set and Policy is not.
	Dir string
	// Policy is a policy (YAML) written to Dir/policy.yaml and passed as
	// --config; PolicyFile names an existing one instead. With neither,
	// agentg runs its embedded default policy.
	Policy     string
	PolicyFile string
	// LogFile is --log-file (appended to, as agentg does); DataDir is
	// --data-dir, where agentg creates its CA on first start.
	LogFile string
	DataDir string
	// Listen is --listen; empty means 127.0.0.1:0, a free loopback port
	// (agentg logs the one it got, and Agentg.Addr holds it).
	Listen string
	// Admin is --admin; empty means 127.0.0.1:0 (Agentg.AdminAddr holds
	// the port it got), so that agentgs started side by side never fight
	// over the default admin port.
	Admin string
	// Args are more serve flags, after the ones above: a flag given again
	// here wins, as the last occurrence does in agentg's flag parsing.
	// Without a --dns among them the DNS filter listens on 127.0.0.1:0
	// (--dns is repeatable, so it is left to Args when given there).
	Args []string
	// Stderr receives agentg's stderr as it comes (nil: nowhere); the last
	// of it is kept for errors either way.
	Stderr io.Writer
	// Env is the process's environment; nil means this process's.
	Env []string
	// StartTimeout bounds the wait until agentg listens; 0 means 10s.
	StartTimeout time.Duration
	// T, when set, is the test agentg is started for: its leak check
	// (leaks.go) searches everything this agentg writes, and the answers
	// the test reads from it, for the test's secret values, and the
	// values the policy's insecure_inline and file secrets hold and Env
	// gives its env secrets are declared without the test saying so.
	T TB
}

// Agentg is a running `agentg serve`.
type Agentg struct {
	Addr       string    // host:port it listens on
	AdminAddr  string    // where its admin API listens, as --admin takes it; empty when off
	Gateway    string    // where its MCP gateway listens (--gateway); empty when off
	DNS        []string  // host:port the DNS filter answers on (UDP and TCP); nil with --dns off
	Binary     string    // the binary it runs
	LogFile    string    // its --log-file
	DataDir    string    // its --data-dir
	PolicyFile string    // its --config; empty for the embedded default
	Cmd        *exec.Cmd // for signals; use Stop, Kill or Wait rather than Cmd.Wait

	exited   chan struct{} // closed when the process has closed its stderr: it is gone
	stderr   *tailBuffer
	waitOnce sync.Once
	waitErr  error

	// With AgentgConfig.T: the test's leak check, and all of stdout and
	// stderr (up to 64 MiB each) for it to search.
	leaks             *LeakCheck
	stdout, stderrAll *tailBuffer
}

// StartAgentg starts `agentg serve` as configured and returns once it
// listens. On error nothing is left running.
func StartAgentg(cfg AgentgConfig) (*Agentg, error) {
	a := &Agentg{Binary: cfg.Binary, LogFile: cfg.LogFile, DataDir: cfg.DataDir, PolicyFile: cfg.PolicyFile}
	if a.Binary == "" {
		bin, err := AgentgBinary()
		if err != nil {
			return nil, err
		}
		a.Binary = bin
	}
	if cfg.Dir == "" && (a.LogFile == "" || a.DataDir == "" || cfg.Policy != "") {
		return nil, errors.New("start agentg: no Dir for its files")
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("start agentg: %w", err)
		}
	}
	if a.LogFile == "" {
		a.LogFile = filepath.Join(cfg.Dir, "agentg.log")
	}
	if a.DataDir == "" {
		a.DataDir = filepath.Join(cfg.Dir, "data")
	}
	if cfg.Policy != "" {
		a.PolicyFile = filepath.Join(cfg.Dir, "policy.yaml")
		if err := os.WriteFile(a.PolicyFile, []byte(cfg.Policy), 0o644); err != nil {
			return nil, fmt.Errorf("start agentg: write policy: %w", err)
		}
	}
	if cfg.T != nil {
		a.leaks = Leaks(cfg.T)
		if a.PolicyFile != "" {
			a.leaks.registerPolicy(a.PolicyFile, cfg.Env)
		}
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	adminAddr := cfg.Admin
	if adminAddr == "" {
		adminAddr = "127.0.0.1:0"
	}
	args := []string{"serve", "--listen", listen, "--log-file", a.LogFile, "--data-dir", a.DataDir, "--admin", adminAddr}
	if a.PolicyFile != "" {
		args = append(args, "--config", a.PolicyFile)
	}
	if !slices.ContainsFunc(cfg.Args, func(a string) bool { return a == "--dns" || strings.HasPrefix(a, "--dns=") }) {
		args = append(args, "--dns", "127.0.0.1:0")
	}
	args = append(args, cfg.Args...)

	// The log is appended to: only a serving line after this offset is
	// this start's.
	var offset int64
	if fi, err := os.Stat(a.LogFile); err == nil {
		offset = fi.Size()
	}
	if err := a.start(args, cfg); err != nil {
		return nil, err
	}
	if a.leaks != nil {
		a.leaks.watch(a)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if err := a.awaitListening(offset, timeout); err != nil {
		a.Kill()
		return nil, err
	}
	return a, nil
}

// start runs the process with its stderr on a pipe of ours: the pipe's
// end (EOF) says the process is gone, without waiting on it, so Cmd.Wait
// stays free for whoever owns the Agentg.
func (a *Agentg) start(args []string, cfg AgentgConfig) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start agentg: %w", err)
	}
	a.Cmd = exec.Command(a.Binary, args...)
	a.Cmd.Env = cfg.Env
	a.Cmd.Stderr = w
	a.stderr = &tailBuffer{max: 8 << 10}
	var out io.Writer = a.stderr
	if a.leaks != nil {
		a.stdout, a.stderrAll = &tailBuffer{max: 64 << 20}, &tailBuffer{max: 64 << 20}
		a.Cmd.Stdout = a.stdout
		out = io.MultiWriter(a.stderr, a.stderrAll)
	}
	a.exited = make(chan struct{})
	err = a.Cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("start agentg: %w", err)
	}
	if cfg.Stderr != nil {
		out = io.MultiWriter(out, cfg.Stderr)
	}
	go func() {
		io.Copy(out, r)
		r.Close()
		close(a.exited)
	}()
	return nil
}

// awaitListening waits for the "agentg serving" line agentg logs once its
// listener is open, and takes the address from it.
func (a *Agentg) awaitListening(offset int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		lines, next, _ := readLogFrom(a.LogFile, offset)
		offset = next
		for _, m := range lines {
			if m["message"] == "admin API listening" {
				a.AdminAddr, _ = m["admin"].(string) // logged before the serving line
			}
			if m["message"] == "MCP gateway listening" {
				a.Gateway, _ = m["gateway"].(string)
			}
			if m["message"] == "agentg serving" {
				if addr, _ := m["listen"].(string); addr != "" {
					a.Addr = addr
					if ds, ok := m["dns"].([]any); ok {
						for _, d := range ds {
							if s, ok := d.(string); ok {
								a.DNS = append(a.DNS, s)
							}
						}
					}
					return nil
				}
			}
		}
		select {
		case <-a.exited:
			return fmt.Errorf("agentg exited before listening: %v\n%s", a.Wait(), a.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agentg did not report its listen address in %s in %v\n%s", a.LogFile, timeout, a.stderr)
		}
	}
}

// URL is the proxy URL clients use: http://Addr.
func (a *Agentg) URL() *url.URL { return &url.URL{Scheme: "http", Host: a.Addr} }

// Pid is the process id.
func (a *Agentg) Pid() int { return a.Cmd.Process.Pid }

// Signal sends sig to agentg (SIGHUP reloads its policy).
func (a *Agentg) Signal(sig os.Signal) error { return a.Cmd.Process.Signal(sig) }

// Exited is closed once the process is gone.
func (a *Agentg) Exited() <-chan struct{} { return a.exited }

// Stderr is the last of what agentg wrote to its stderr.
func (a *Agentg) Stderr() string { return a.stderr.String() }

// Stop sends SIGTERM and waits up to grace for agentg to exit, then kills
// it. It returns nil when agentg exited cleanly after SIGTERM, its exit
// error when it failed, and an error saying so when it had to be killed.
func (a *Agentg) Stop(grace time.Duration) error {
	if err := a.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop agentg: %w", err)
	}
	select {
	case <-a.exited:
		return a.Wait()
	case <-time.After(grace):
		a.Kill()
		return fmt.Errorf("agentg did not exit within %v of SIGTERM; killed", grace)
	}
}

// Kill kills agentg (if it still runs) and reaps it. It is safe to call
// after Stop, and more than once: use it in cleanups.
func (a *Agentg) Kill() {
	a.Cmd.Process.Kill()
	select {
	case <-a.exited:
	case <-time.After(5 * time.Second):
	}
	a.Wait()
}

// Wait waits for agentg to exit and returns how it did (an
// *exec.ExitError when not with status 0); it may be called more than
// once, and after someone waited on Cmd directly.
func (a *Agentg) Wait() error {
	a.waitOnce.Do(func() {
		err := a.Cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) && a.Cmd.ProcessState != nil {
			// Cmd.Wait was already called elsewhere; its result stands.
			err = nil
			if !a.Cmd.ProcessState.Success() {
				err = &exec.ExitError{ProcessState: a.Cmd.ProcessState}
			}
		}
		a.waitErr = err
	})
	return a.waitErr
}

// AdminToken is the admin API token agentg generated in its data
// directory on first start.
func (a *Agentg) AdminToken() (string, error) {
	b, err := os.ReadFile(filepath.Join(a.DataDir, "admin.token"))
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// CAPEM is agentg's CA certificate, as `agentg ca export` prints it for
// its data directory (agentg creates the CA there on first start).
func (a *Agentg) CAPEM() ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(a.Binary, "ca", "export", "--data-dir", a.DataDir)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("agentg ca export: %w: %s", err, errb.Bytes())
	}
	return out.Bytes(), nil
}

// CAPool is a pool trusting agentg's CA and nothing else: a client using
// it completes a TLS handshake only with a leaf agentg issued.
func (a *Agentg) CAPool() (*x509.CertPool, error) {
	b, err := a.CAPEM()
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("agentg ca export: no certificate in %q", b)
	}
	return p, nil
}

// ReadLog reads a log of JSON lines (agentg's --log-file), skipping lines
// that are not JSON objects. A missing file is an empty log.
func ReadLog(path string) ([]map[string]any, error) {
	lines, _, err := readLogFrom(path, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return lines, err
}

// readLogFrom reads the complete lines from offset on, and returns the
// offset after the last of them (a line still being written is left for
// the next read).
func readLogFrom(path string, offset int64) ([]map[string]any, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, err
	}
	var out []map[string]any
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return out, offset, nil // EOF: the rest is not a whole line yet
		}
		offset += int64(len(line))
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
}

// tailBuffer keeps the last max bytes written to it; over says some were
// dropped.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	b    []byte
	over bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.over = true
	}
	return len(p), nil
}

func (t *tailBuffer) dropped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.over
}

func (t *tailBuffer) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
