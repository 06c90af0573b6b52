package bench

// The MCP benchmark: tools/call round trips to a Go SDK MCP server
// (internal/testenv), direct, through an agentg that intercepts the
// server's host but has no mcp: section (the exchange is forwarded
// undissected), and through an agentg whose mcp: section names the server
// and has tool rules (every call dissected and decided). The two agentg
// processes run side by side, one per policy, so that the modes can
// alternate round by round without reloads.

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// The MCP modes: direct to the server, through the intercepting agentg
// without an mcp section, through the agentg that governs the server.
const (
	MCPIntercept Mode = "intercept"  // agentg intercepts, no mcp: section
	MCPGoverned  Mode = "mcp-policy" // agentg intercepts and dissects under an mcp: section
)

// MCPModes are the modes of an MCP round, in the order they run.
var MCPModes = []Mode{Direct, MCPIntercept, MCPGoverned}

// MCPHost is the MCP server's name; the policies resolve it to 127.0.0.1.
const MCPHost = "mcp.test"

// MCPRevision is the protocol revision the clients speak: stateful
// Streamable HTTP.
const MCPRevision = "2025-11-25"

// mcpBasePolicy lets the loopback MCP servers be reached and intercepts
// them; MCPInterceptPolicy is just that.
const mcpBasePolicy = `# agentg-load (mcp): allow and intercept the loopback MCP servers, deny the rest.
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: ` + MCPHost + `
resolve:
  ` + MCPHost + `: [127.0.0.1]
intercept: [` + MCPHost + `]
`

// MCPInterceptPolicy is mode intercept's policy: no mcp section, so the
// exchanges inside the intercepted tunnel are forwarded as plain HTTP.
const MCPInterceptPolicy = mcpBasePolicy

// MCPGovernedPolicy is mode mcp-policy's: server srv is the MCP host, and
// every call is decided by tool rules a real policy would have: an allow
// for echo, a deny on another tool, an argument condition on echo (which
// the benchmark's arguments do not meet) and a redaction of results (which
// the echoed arguments do not contain).
const MCPGovernedPolicy = mcpBasePolicy + `mcp:
  default: deny
  servers:
    - name: srv
      url: "` + MCPHost + `/**"
  tools:
    - deny: "srv.delete_*"
      id: no-delete
    - deny: "srv.echo"
      id: no-rm
      when:
        - arg: /command
          matches: 'rm\s+-rf'
    - allow: "srv.echo"
      id: echo
    - allow: "srv.slow"
      id: slow
    - allow: "srv.secret"
      id: secret
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [results]
      id: aws
`

// MCPFramings are the response framings measured: application/json
// answers and text/event-stream answers.
var MCPFramings = []testenv.MCPMode{testenv.MCPStatefulJSON, testenv.MCPStateful}

// MCPConfig says how to build an MCPEnv.
type MCPConfig struct {
	// Agentg is the binary to run; empty builds one from this module.
	Agentg string
	// Keep leaves the run's directory in place.
	Keep bool
	// Stderr receives agentg's stderr (nil: kept only for errors).
	Stderr io.Writer
}

// MCPEnv is one MCP server per framing and the two agentg processes, all
// on loopback.
type MCPEnv struct {
	Dir       string
	Servers   map[testenv.MCPMode]*testenv.MCPServer
	Intercept *testenv.Agentg // MCPInterceptPolicy
	Governed  *testenv.Agentg // MCPGovernedPolicy

	keep  bool
	upCA  *testenv.CA
	roots map[Mode]*x509.CertPool
}

// StartMCP builds an MCPEnv. Close it when done.
func StartMCP(cfg MCPConfig) (e *MCPEnv, err error) {
	e = &MCPEnv{Servers: map[testenv.MCPMode]*testenv.MCPServer{}, roots: map[Mode]*x509.CertPool{}, keep: cfg.Keep}
	started := e // the returns below clear e
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	if e.Dir, err = os.MkdirTemp("", "agentg-bench-mcp-"); err != nil {
		return nil, err
	}
	if e.upCA, err = testenv.NewCA("agentg bench MCP upstream CA"); err != nil {
		return nil, err
	}
	e.roots[Direct] = e.upCA.Pool()
	for _, f := range MCPFramings {
		s, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: f, CA: e.upCA, Hosts: []string{MCPHost}})
		if err != nil {
			return nil, err
		}
		e.Servers[f] = s
	}
	upCAFile := filepath.Join(e.Dir, "upstream-ca.pem")
	if err = e.upCA.WriteCert(upCAFile); err != nil {
		return nil, err
	}
	start := func(name, policy string) (*testenv.Agentg, error) {
		return testenv.StartAgentg(testenv.AgentgConfig{
			Binary: cfg.Agentg, Dir: filepath.Join(e.Dir, name), Policy: policy,
			Args:   []string{"--upstream-ca", upCAFile, "--reload-interval", "0"},
			Stderr: cfg.Stderr,
		})
	}
	if e.Intercept, err = start("agentg-intercept", MCPInterceptPolicy); err != nil {
		return nil, err
	}
	if e.Governed, err = start("agentg-mcp", MCPGovernedPolicy); err != nil {
		return nil, err
	}
	for m, a := range map[Mode]*testenv.Agentg{MCPIntercept: e.Intercept, MCPGoverned: e.Governed} {
		if e.roots[m], err = a.CAPool(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Close stops both agentg processes and the servers and removes the
// run's files (unless MCPConfig.Keep).
func (e *MCPEnv) Close() {
	for _, a := range []*testenv.Agentg{e.Intercept, e.Governed} {
		if a != nil {
			a.Stop(10 * time.Second)
		}
	}
	for _, s := range e.Servers {
		s.Close()
	}
	if e.Dir != "" && !e.keep {
		os.RemoveAll(e.Dir)
	}
}

// agentg is mode m's process; nil for Direct.
func (e *MCPEnv) agentg(m Mode) *testenv.Agentg {
	switch m {
	case MCPIntercept:
		return e.Intercept
	case MCPGoverned:
		return e.Governed
	}
	return nil
}

func (e *MCPEnv) pid(m Mode) int {
	if a := e.agentg(m); a != nil {
		return a.Pid()
	}
	return 0
}

// clientConfig is how a client of framing f's server reaches it in mode m:
// through that mode's agentg trusting its CA only, or dialling the server's
// loopback address trusting the server's CA.
func (e *MCPEnv) clientConfig(f testenv.MCPMode, m Mode) testenv.MCPClientConfig {
	cfg := testenv.MCPClientConfig{Roots: e.roots[m]}
	if a := e.agentg(m); a != nil {
		cfg.Proxy = a.URL()
	} else {
		cfg.Direct = e.Servers[f].Addr
	}
	return cfg
}

// openSession is a raw client with its own HTTP client (so its own
// keep-alive connection, and through agentg its own intercepted tunnel)
// and an initialized session.
func (e *MCPEnv) openSession(ctx context.Context, f testenv.MCPMode, m Mode) (*testenv.MCPRaw, error) {
	r := testenv.NewMCPRaw(testenv.MCPHTTPClient(e.clientConfig(f, m)), f, e.Servers[f].URL, MCPRevision)
	if err := r.Open(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("%v %s: open session: %w", f, m, err)
	}
	return r, nil
}

// closeSession ends the session (DELETE, as the SDK client does) so that
// the servers do not pile up sessions across runs, and drops the
// connection.
func closeSession(r *testenv.MCPRaw) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, r.Endpoint, nil); err == nil {
		req.Header.Set("Mcp-Session-Id", r.Session)
		req.Header.Set("MCP-Protocol-Version", r.Revision)
		if resp, err := r.HTTP.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	r.Close()
}

// echoCall posts a tools/call of tool (echo, under the name the client
// sees it by) with small arguments and checks that echo's answer came
// back.
func echoCall(ctx context.Context, r *testenv.MCPRaw, buf []byte, id int64, tool string) ([]byte, int64, error) {
	buf = fmt.Appendf(buf[:0], `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"command":"ls -l /tmp","n":%d}}}`, id, tool, id)
	rep, err := r.Post(ctx, testenv.MCPPost{Body: buf})
	if err != nil {
		return buf, 0, err
	}
	n := int64(len(rep.Body))
	if rep.Status != http.StatusOK || !bytes.Contains(rep.Body, []byte(`"structuredContent"`)) || bytes.Contains(rep.Body, []byte(`"isError":true`)) {
		return buf, n, fmt.Errorf("tools/call %s: %d %.200q", tool, rep.Status, rep.Body)
	}
	return buf, n, nil
}

// RunMCP runs concurrent sessions calling echo on framing f's server in
// mode m: each client opens its own connection and session first, warms
// up, then calls for o.Duration (or o.MaxRequests calls between them).
func (e *MCPEnv) RunMCP(f testenv.MCPMode, m Mode, o Options) Result {
	open := func(ctx context.Context) (*testenv.MCPRaw, error) { return e.openSession(ctx, f, m) }
	return runSessions("mcp-"+f.String(), m, o, e.pid(m), open, testenv.MCPToolEcho)
}

// runSessions is RunMCP's loop for any way of opening a session: o's
// concurrency of sessions, each on its own connection, calling tool (an
// echo), with pid's CPU time measured around the calls.
func runSessions(name string, m Mode, o Options, pid int, open func(context.Context) (*testenv.MCPRaw, error), tool string) Result {
	conc := max(o.Concurrency, 1)
	ctx, cancel := context.WithTimeout(context.Background(), o.Warmup+o.Duration+5*time.Minute)
	defer cancel()
	sessions := make([]*testenv.MCPRaw, conc)
	for i := range sessions {
		r, err := open(ctx)
		if err != nil {
			for _, s := range sessions[:i] {
				closeSession(s)
			}
			res := newResult(name, m, conc, 0, 1, 0, 0, nil)
			res.FirstError = err.Error()
			return res
		}
		sessions[i] = r
	}
	defer func() {
		for _, s := range sessions {
			closeSession(s)
		}
	}()
	limit := o.MaxRequests
	if limit <= 0 {
		limit = 10_000_000
	}
	mcpLoop(ctx, sessions, time.Now().Add(o.Warmup), limit, tool) // unmeasured
	cpu0, self0 := processCPU(pid), selfCPU()
	start := time.Now()
	w := mcpLoop(ctx, sessions, start.Add(o.Duration), limit, tool)
	el := time.Since(start)
	r := newResult(name, m, conc, w.reqs, w.errs, w.bytes, el, w.lat)
	r.setCPU(processCPU(pid)-cpu0, selfCPU()-self0, pid != 0)
	r.FirstError = w.firstErr
	return r
}

// mcpLoop has each session call tool (an echo), one call at a time,
// until deadline or until limit calls between them.
func mcpLoop(ctx context.Context, sessions []*testenv.MCPRaw, deadline time.Time, limit int64, tool string) tally {
	var (
		mu   sync.Mutex
		all  tally
		wg   sync.WaitGroup
		each = max(limit/int64(len(sessions)), 1)
	)
	for _, s := range sessions {
		wg.Go(func() {
			var t tally
			t.lat = make([]time.Duration, 0, 4096)
			buf := make([]byte, 0, 256)
			for n := int64(0); n < each && t.errs < maxErrors && time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				t0 := time.Now()
				var got int64
				var err error
				buf, got, err = echoCall(ctx, s, buf, n+1000, tool)
				t.lat = append(t.lat, time.Since(t0))
				t.bytes += got
				if err != nil {
					t.errs++
					if t.firstErr == "" {
						t.firstErr = err.Error()
					}
					continue
				}
				t.reqs++
			}
			mu.Lock()
			all.reqs += t.reqs
			all.errs += t.errs
			all.bytes += t.bytes
			all.lat = append(all.lat, t.lat...)
			if all.firstErr == "" {
				all.firstErr = t.firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

// MCPSet is one framing run in every mode: the median run of each and the
// ratios between them.
type MCPSet struct {
	Framing string            `json:"framing"`
	Runs    map[Mode][]Result `json:"runs"`
	Median  map[Mode]Result   `json:"median"`
	// GovernedOverIntercept is mode mcp-policy's req/s over mode
	// intercept's (target ≥ 0.85); AddedP50 is its p50 minus intercept's
	// (target < 50µs). The per-round ratios compare runs of one round.
	GovernedOverIntercept float64         `json:"governed_over_intercept"`
	RoundRatios           []float64       `json:"round_ratios"`
	AddedP50              time.Duration   `json:"added_p50_ns"`
	RoundAddedP50         []time.Duration `json:"round_added_p50_ns"`
	InterceptOverDirect   float64         `json:"intercept_over_direct"`
	GovernedOverDirect    float64         `json:"governed_over_direct"`
}

// MCP targets: what dissection and policy may cost over plain
// interception.
const (
	MCPTargetRatio    = 0.85
	MCPTargetAddedP50 = 50 * time.Microsecond
)

// Met says whether both targets were met by the medians.
func (s MCPSet) Met() bool {
	return s.GovernedOverIntercept >= MCPTargetRatio && s.AddedP50 < MCPTargetAddedP50
}

// RunMCPSet runs framing f in n rounds (at least 1) of direct, intercept,
// mcp-policy, so that drift on a shared machine hits every mode alike.
func (e *MCPEnv) RunMCPSet(f testenv.MCPMode, o Options, n int, progress func(round int, r Result)) MCPSet {
	set := MCPSet{Framing: f.String(), Runs: map[Mode][]Result{}, Median: map[Mode]Result{}}
	for i := range max(n, 1) {
		round := map[Mode]Result{}
		for _, m := range MCPModes {
			r := e.RunMCP(f, m, o)
			round[m] = r
			set.Runs[m] = append(set.Runs[m], r)
			if progress != nil {
				progress(i, r)
			}
		}
		set.RoundRatios = append(set.RoundRatios, div(round[MCPGoverned].ReqPerSec, round[MCPIntercept].ReqPerSec))
		set.RoundAddedP50 = append(set.RoundAddedP50, round[MCPGoverned].P50-round[MCPIntercept].P50)
	}
	for _, m := range MCPModes {
		set.Median[m] = Median(set.Runs[m], "req/s")
	}
	d, in, g := set.Median[Direct], set.Median[MCPIntercept], set.Median[MCPGoverned]
	set.GovernedOverIntercept = div(g.ReqPerSec, in.ReqPerSec)
	set.AddedP50 = g.P50 - in.P50
	set.InterceptOverDirect = div(in.ReqPerSec, d.ReqPerSec)
	set.GovernedOverDirect = div(g.ReqPerSec, d.ReqPerSec)
	return set
}

// CheckMCPPolicy proves that mode mcp-policy really dissects and decides
// and mode intercept does not: through the governed agentg a call of
// delete_project and an echo of "rm -rf" never reach the server and the
// secret tool's key is redacted; through the intercepting one the secret
// arrives as the server sent it.
func (e *MCPEnv) CheckMCPPolicy(ctx context.Context, f testenv.MCPMode) error {
	srv := e.Servers[f]
	call := func(r *testenv.MCPRaw, id, tool string, args map[string]any) (string, error) {
		rep, err := r.Call(ctx, id, "tools/call", map[string]any{"name": tool, "arguments": args})
		if err != nil {
			return "", fmt.Errorf("tools/call %s: %w", tool, err)
		}
		return string(rep.Body), nil
	}
	g, err := e.openSession(ctx, f, MCPGoverned)
	if err != nil {
		return err
	}
	defer closeSession(g)
	var errs []error
	before := srv.Calls(testenv.MCPToolDelete)
	if _, err := call(g, "1", testenv.MCPToolDelete, map[string]any{"project": "x"}); err != nil {
		errs = append(errs, err)
	} else if srv.Calls(testenv.MCPToolDelete) != before {
		errs = append(errs, errors.New("mcp-policy: delete_project reached the server"))
	}
	before = srv.Calls(testenv.MCPToolEcho)
	if _, err := call(g, "2", testenv.MCPToolEcho, map[string]any{"command": "rm -rf /"}); err != nil {
		errs = append(errs, err)
	} else if srv.Calls(testenv.MCPToolEcho) != before {
		errs = append(errs, errors.New("mcp-policy: echo of rm -rf reached the server"))
	}
	if body, err := call(g, "3", testenv.MCPToolSecret, map[string]any{}); err != nil {
		errs = append(errs, err)
	} else if strings.Contains(body, testenv.MCPSecret) || !strings.Contains(body, "[REDACTED") {
		errs = append(errs, fmt.Errorf("mcp-policy: the secret was not redacted: %.300s", body))
	}
	p, err := e.openSession(ctx, f, MCPIntercept)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer closeSession(p)
	if body, err := call(p, "3", testenv.MCPToolSecret, map[string]any{}); err != nil {
		errs = append(errs, err)
	} else if !strings.Contains(body, testenv.MCPSecret) {
		errs = append(errs, fmt.Errorf("intercept: the secret did not pass as sent (was it dissected?): %.300s", body))
	}
	return errors.Join(errs...)
}

// rss is process pid's resident set size in bytes, from /proc.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
