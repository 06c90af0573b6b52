package child

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// Supervisor keeps the policy's command servers running: it starts each
// (Child), restarts one that exits with backoff (doubling from
// Backoff.Min to Backoff.Max, back to Min once a run stayed up
// Backoff.Reset), writes an event for each start and each exit (with its
// status), and stops them all on Stop (stdin closed, SIGTERM, then
// SIGKILL, each after Grace). It proves the proxy credentials it gave
// each process (Check: proxy.ServerIdentities).
type Supervisor struct {
	cfg SupervisorConfig

	mu       sync.Mutex
	children map[string]*Child
	stopped  bool
}

// SupervisorConfig is what a Supervisor needs. Log and Proxy are
// required.
type SupervisorConfig struct {
	Log *audit.Logger
	// Proxy is agentg's explicit listener (host:port) every child's
	// HTTPS_PROXY and HTTP_PROXY point at.
	Proxy string
	// Grace is the shutdown grace; 0: DefaultGrace.
	Grace   time.Duration
	Backoff Backoff
	// LookPath finds a command's program; nil: exec.LookPath on agentg's
	// own PATH (a child's env does not change where its program is).
	LookPath func(string) (string, error)
}

// Backoff bounds restarts. The zero value is DefaultBackoff.
type Backoff struct {
	Min, Max time.Duration
	Reset    time.Duration // a run that stayed up this long resets the delay
}

// DefaultBackoff is what a zero Backoff means.
var DefaultBackoff = Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, Reset: 30 * time.Second}

// NewSupervisor makes a supervisor; Start starts its children.
func NewSupervisor(cfg SupervisorConfig) (*Supervisor, error) {
	if cfg.Log == nil || cfg.Proxy == "" {
		return nil, errors.New("child: SupervisorConfig.Log and Proxy are required")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.LookPath == nil {
		cfg.LookPath = exec.LookPath
	}
	return &Supervisor{cfg: cfg, children: map[string]*Child{}}, nil
}

// Start brings the children in line with eng's command servers, at
// start and on every reload: it starts a child for each new server,
// stops the child of each server no longer in the policy, and restarts
// the child of a server whose command, dir or env changed (after the old
// process has exited). A child that stays gets eng for its next start (a
// rotated secret is read then); its egress list is the policy's in force
// on every request, without a restart. A server whose program cannot be
// found or whose secret cannot be read is retried with backoff like one
// that exits; its events say why.
func (s *Supervisor) Start(eng *rules.Engine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	want := map[string]rules.StdioServer{}
	for _, spec := range eng.MCP().StdioServers() {
		want[spec.Name] = spec
	}
	old := map[string]*Child{}
	for name, c := range s.children {
		spec, ok := want[name]
		if ok && sameRun(c.spec, spec) {
			c.eng.Store(eng)
			continue
		}
		c.stop()
		old[name] = c
		delete(s.children, name)
	}
	for name, spec := range want {
		if s.children[name] != nil {
			continue
		}
		c := newChild(s, spec, eng)
		s.children[name] = c
		prev := old[name]
		go func() {
			if prev != nil {
				<-prev.done // one process per server at a time
			}
			c.run()
		}()
	}
}

// sameRun reports whether two entries start the same process.
func sameRun(a, b rules.StdioServer) bool {
	return slices.Equal(a.Command, b.Command) && a.Dir == b.Dir && slices.Equal(a.Env, b.Env)
}

// Child is the running child of server name, if the policy has one.
func (s *Supervisor) Child(name string) (*Child, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.children[name]
	return c, ok
}

// Statuses are the children's states, by server name.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	cs := make([]*Child, 0, len(s.children))
	for _, c := range s.children {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	out := make([]Status, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Status())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Server, b.Server) })
	return out
}

// Check proves a server's proxy credentials: the password of its
// current process, compared in constant time.
func (s *Supervisor) Check(server, password string) bool {
	c, ok := s.Child(server)
	if !ok {
		return false
	}
	p := c.current()
	if p == nil || p.password == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(p.password), []byte(password)) == 1
}

// Stop stops every child and waits until each has exited (or ctx ends).
func (s *Supervisor) Stop(ctx context.Context) {
	s.mu.Lock()
	s.stopped = true
	cs := make([]*Child, 0, len(s.children))
	for _, c := range s.children {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.stop()
	}
	for _, c := range cs {
		select {
		case <-c.done:
		case <-ctx.Done():
			return
		}
	}
}

// newPassword is a fresh proxy password for one process.
func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("proxy password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// proxyURL is the proxy URL of server's process with its password.
func proxyURL(proxy, server, password string) string {
	u := url.URL{Scheme: "http", Host: proxy, User: url.UserPassword(rules.ProxyUserPrefix+server, password)}
	return u.String()
}

// environ is a child's whole environment: what its entry lists (secrets
// read now, through the policy's credentials store) and the proxy
// variables. The error names a secret that cannot be read, never a value.
// held are the secret values it holds (and the proxy password), which
// nothing agentg writes of the child's may show.
func environ(ctx context.Context, eng *rules.Engine, spec rules.StdioServer, proxy string) (env []string, held []heldSecret, err error) {
	env = make([]string, 0, len(spec.Env)+4)
	for _, v := range spec.Env {
		val := v.Value
		if v.Secret != "" {
			sec, err := eng.Credentials().Store().Get(ctx, v.Secret)
			if err != nil {
				return nil, nil, fmt.Errorf("env %s: secret %s cannot be read", v.Name, v.Secret)
			}
			val = sec.Reveal()
			if val != "" {
				held = append(held, heldSecret{name: v.Secret, value: val})
			}
		}
		env = append(env, v.Name+"="+val)
	}
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		env = append(env, k+"="+proxy)
	}
	return env, held, nil
}

// heldSecret is a secret value a child holds, by its name.
type heldSecret struct{ name, value string }

// exitText is a process's end as events say it: its exit status or the
// signal that ended it.
func exitText(err error, ps interface{ Sys() any }) string {
	if ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return "killed by signal " + ws.Signal().String()
			}
			return "exit status " + strconv.Itoa(ws.ExitStatus())
		}
	}
	if err != nil {
		return err.Error()
	}
	return "exited"
}
