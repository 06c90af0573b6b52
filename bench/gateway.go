package bench

// The gateway benchmark (issue 17): a tools/call of echo through agentg's
// MCP gateway door (`agentg serve --gateway`) against the same call
// direct to the server and through the proxy with interception (with and
// without an mcp: section: MCPEnv's two agentg processes), in both of the
// servers' response framings, at concurrency 1 and 16; a tools/list over
// ten servers of a hundred tools each; and agentg's memory per idle
// client session of the gateway.
//
// Every client is the raw Streamable HTTP client the MCP benchmark uses
// (testenv.MCPRaw), one session and one connection each: the bytes on
// the wire are the same in every mode, so the differences are agentg's.
// The servers are the Go SDK's (testenv.MCPServer) in this process; each
// agentg is its own process, as users run it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// GatewayMode is a run through the gateway door.
const GatewayMode Mode = "gateway"

// GatewayModes are the modes of a gateway round, in the order they run.
var GatewayModes = []Mode{Direct, MCPIntercept, MCPGoverned, GatewayMode}

// Gateway targets (issue 17): what the gateway may add over direct.
const (
	GatewayTargetAddedP50 = 100 * time.Microsecond
	GatewayTargetRatio    = 0.80 // of direct's req/s at concurrency 16
	GatewayTargetListP50  = 5 * time.Millisecond
)

// Sizes of the list and memory measurements.
const (
	GatewayListServers = 10
	GatewayListTools   = 100
	// baseTools is how many tools an MCPServer has before its fillers.
	baseTools = 9
)

// gatewayServerName is the gateway's name for framing f's server; its
// tools are NAME.TOOL in the catalogue.
func gatewayServerName(f testenv.MCPMode) string {
	if f.JSON() {
		return "json"
	}
	return "sse"
}

// gatewayTools are the tool rules of mcpGovernedPolicy for server srv:
// the same decisions per call through the gateway as through the proxy.
func gatewayTools(srv string) string {
	return `    - deny: "` + srv + `.delete_*"
      id: ` + srv + `-no-delete
    - deny: "` + srv + `.echo"
      id: ` + srv + `-no-rm
      when:
        - arg: /command
          matches: 'rm\s+-rf'
    - allow: "` + srv + `.echo"
      id: ` + srv + `-echo
    - allow: "` + srv + `.secret"
      id: ` + srv + `-secret
`
}

// GatewayPolicy is the calls gateway's policy: the MCP servers of both
// framings behind it, under the governed mode's rules (an allow, a deny,
// an argument condition, a redaction of results).
func GatewayPolicy(servers map[testenv.MCPMode]*testenv.MCPServer) string {
	p := mcpBasePolicy + "mcp:\n  default: deny\n  servers:\n"
	var tools string
	for _, f := range MCPFramings {
		n := gatewayServerName(f)
		p += "    - name: " + n + "\n      endpoint: " + servers[f].URL + "\n"
		tools += gatewayTools(n)
	}
	return p + "  tools:\n" + tools + `  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      in: [results]
      id: aws
`
}

// GatewayListPolicy is the lists gateway's: GatewayListServers servers of
// GatewayListTools tools each, every tool allowed by one rule per server.
func GatewayListPolicy(servers []*testenv.MCPServer) string {
	p := mcpBasePolicy + "mcp:\n  default: deny\n  servers:\n"
	var tools string
	for i, s := range servers {
		n := fmt.Sprintf("l%d", i)
		p += "    - name: " + n + "\n      endpoint: " + s.URL + "\n"
		tools += "    - allow: \"" + n + ".*\"\n      id: " + n + "-all\n"
	}
	return p + "  tools:\n" + tools
}

// GatewayEnv is MCPEnv (direct, intercept, mcp-policy) plus two agentg
// processes serving the gateway door: one in front of the framings'
// servers, one in front of the list servers.
type GatewayEnv struct {
	*MCPEnv
	Gateway     *testenv.Agentg // GatewayPolicy
	Lists       *testenv.Agentg // GatewayListPolicy
	ListServers []*testenv.MCPServer
}

// StartGateway builds a GatewayEnv. Close it when done.
func StartGateway(cfg MCPConfig) (e *GatewayEnv, err error) {
	m, err := StartMCP(cfg)
	if err != nil {
		return nil, err
	}
	e = &GatewayEnv{MCPEnv: m}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	for range GatewayListServers {
		s, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStatefulJSON, CA: e.upCA, Hosts: []string{MCPHost},
			Filler: GatewayListTools - baseTools})
		if err != nil {
			return nil, err
		}
		e.ListServers = append(e.ListServers, s)
	}
	start := func(name, policy string) (*testenv.Agentg, error) {
		a, err := testenv.StartAgentg(testenv.AgentgConfig{
			Binary: cfg.Agentg, Dir: filepath.Join(e.Dir, name), Policy: policy,
			Args:   []string{"--upstream-ca", filepath.Join(e.Dir, "upstream-ca.pem"), "--reload-interval", "0", "--gateway", "127.0.0.1:0"},
			Stderr: cfg.Stderr,
		})
		if err == nil && a.Gateway == "" {
			a.Stop(5 * time.Second)
			err = errors.New("agentg did not say where its gateway listens")
		}
		return a, err
	}
	if e.Gateway, err = start("agentg-gateway", GatewayPolicy(e.Servers)); err != nil {
		return nil, err
	}
	if e.Lists, err = start("agentg-gateway-lists", GatewayListPolicy(e.ListServers)); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops everything StartGateway started.
func (e *GatewayEnv) Close() {
	for _, a := range []*testenv.Agentg{e.Gateway, e.Lists} {
		if a != nil {
			a.Stop(10 * time.Second)
		}
	}
	for _, s := range e.ListServers {
		s.Close()
	}
	e.MCPEnv.Close()
}

// gatewayEndpoint is a's gateway URL.
func gatewayEndpoint(a *testenv.Agentg) string { return "http://" + a.Gateway + "/mcp" }

// openGatewaySession is a raw client of a's gateway with its own
// connection and an initialized session.
func openGatewaySession(ctx context.Context, a *testenv.Agentg, hc *http.Client) (*testenv.MCPRaw, error) {
	if hc == nil {
		hc = testenv.MCPHTTPClient(testenv.MCPClientConfig{})
	}
	r := testenv.NewMCPRaw(hc, testenv.MCPStateful, gatewayEndpoint(a), MCPRevision)
	if err := r.Open(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("gateway: open session: %w", err)
	}
	return r, nil
}

// RunGatewayCall runs framing f's echo in mode m at o's concurrency:
// modes other than the gateway's are RunMCP's.
func (e *GatewayEnv) RunGatewayCall(f testenv.MCPMode, m Mode, o Options) Result {
	if m != GatewayMode {
		return e.RunMCP(f, m, o)
	}
	open := func(ctx context.Context) (*testenv.MCPRaw, error) { return openGatewaySession(ctx, e.Gateway, nil) }
	return runSessions("mcp-"+f.String(), m, o, e.Gateway.Pid(), open, gatewayServerName(f)+"."+testenv.MCPToolEcho)
}

// GatewaySet is one framing at one concurrency in every mode, with the
// gateway's figures against direct's.
type GatewaySet struct {
	Framing     string            `json:"framing"`
	Concurrency int               `json:"concurrency"`
	Runs        map[Mode][]Result `json:"runs"`
	Median      map[Mode]Result   `json:"median"`
	// GatewayOverDirect is the gateway's req/s over direct's (target
	// ≥ 0.80 at concurrency 16); AddedP50 its p50 minus direct's (target
	// < 100µs). The per-round figures compare runs of one round.
	GatewayOverDirect float64         `json:"gateway_over_direct"`
	AddedP50          time.Duration   `json:"added_p50_ns"`
	RoundRatios       []float64       `json:"round_ratios"`
	RoundAddedP50     []time.Duration `json:"round_added_p50_ns"`
}

// Met reports whether the medians meet the targets (the req/s one is
// judged at concurrency 16 and above only).
func (s GatewaySet) Met() bool {
	return s.AddedP50 < GatewayTargetAddedP50 && (s.Concurrency < 16 || s.GatewayOverDirect >= GatewayTargetRatio)
}

// RunGatewaySet runs n rounds (at least 1) of every mode in turn.
func (e *GatewayEnv) RunGatewaySet(f testenv.MCPMode, o Options, n int, progress func(round int, r Result)) GatewaySet {
	set := GatewaySet{Framing: f.String(), Concurrency: max(o.Concurrency, 1), Runs: map[Mode][]Result{}, Median: map[Mode]Result{}}
	for i := range max(n, 1) {
		round := map[Mode]Result{}
		for _, m := range GatewayModes {
			r := e.RunGatewayCall(f, m, o)
			round[m] = r
			set.Runs[m] = append(set.Runs[m], r)
			if progress != nil {
				progress(i, r)
			}
		}
		set.RoundRatios = append(set.RoundRatios, div(round[GatewayMode].ReqPerSec, round[Direct].ReqPerSec))
		set.RoundAddedP50 = append(set.RoundAddedP50, round[GatewayMode].P50-round[Direct].P50)
	}
	for _, m := range GatewayModes {
		set.Median[m] = Median(set.Runs[m], "req/s")
	}
	set.GatewayOverDirect = div(set.Median[GatewayMode].ReqPerSec, set.Median[Direct].ReqPerSec)
	set.AddedP50 = set.Median[GatewayMode].P50 - set.Median[Direct].P50
	return set
}

// CheckGatewayPolicy proves that the gateway decides: a denied tool never
// reaches the server, an echo of "rm -rf" neither, the secret is
// redacted, and echo answers.
func (e *GatewayEnv) CheckGatewayPolicy(ctx context.Context) error {
	r, err := openGatewaySession(ctx, e.Gateway, nil)
	if err != nil {
		return err
	}
	defer closeSession(r)
	var errs []error
	for _, f := range MCPFramings {
		srv, n := e.Servers[f], gatewayServerName(f)
		call := func(id, tool string, args map[string]any) string {
			rep, err := r.Call(ctx, id, "tools/call", map[string]any{"name": n + "." + tool, "arguments": args})
			if err != nil {
				errs = append(errs, fmt.Errorf("gateway tools/call %s.%s: %w", n, tool, err))
				return ""
			}
			return string(rep.Body)
		}
		before := srv.Calls(testenv.MCPToolDelete)
		call("1", testenv.MCPToolDelete, map[string]any{"project": "x"})
		if srv.Calls(testenv.MCPToolDelete) != before {
			errs = append(errs, fmt.Errorf("gateway: %s.delete_project reached the server", n))
		}
		before = srv.Calls(testenv.MCPToolEcho)
		call("2", testenv.MCPToolEcho, map[string]any{"command": "rm -rf /"})
		if srv.Calls(testenv.MCPToolEcho) != before {
			errs = append(errs, fmt.Errorf("gateway: %s.echo of rm -rf reached the server", n))
		}
		if body := call("3", testenv.MCPToolSecret, map[string]any{}); strings.Contains(body, testenv.MCPSecret) || !strings.Contains(body, "[REDACTED") {
			errs = append(errs, fmt.Errorf("gateway: %s.secret was not redacted: %.300s", n, body))
		}
		before = srv.Calls(testenv.MCPToolEcho)
		if body := call("4", testenv.MCPToolEcho, map[string]any{"n": 1}); !strings.Contains(body, `"structuredContent"`) || srv.Calls(testenv.MCPToolEcho) != before+1 {
			errs = append(errs, fmt.Errorf("gateway: %s.echo did not run: %.300s", n, body))
		}
	}
	return errors.Join(errs...)
}

// ListResult is the tools/list figure: one sample is a whole listing
// (every page) of the merged catalogue by one session.
type ListResult struct {
	Servers int           `json:"servers"`
	Tools   int           `json:"tools"` // in one listing
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	// FirstP50 is the p50 of a new session's first listing, the
	// catalogue not yet loaded for it.
	FirstP50 time.Duration `json:"first_p50_ns"`
	CPU      time.Duration `json:"agentg_cpu_per_list_ns"`
	Errors   int           `json:"errors"`
	First    string        `json:"first_error,omitempty"`
}

// Met reports whether the p50 meets the target.
func (l ListResult) Met() bool { return l.Errors == 0 && l.P50 > 0 && l.P50 < GatewayTargetListP50 }

// MeasureList lists the lists gateway's catalogue n times on one session
// (after its first listing), and once on each of sessions new sessions.
func (e *GatewayEnv) MeasureList(n, sessions int) ListResult {
	res := ListResult{Servers: len(e.ListServers)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fail := func(err error) {
		res.Errors++
		if res.First == "" {
			res.First = err.Error()
		}
	}
	var first []time.Duration
	for range max(sessions, 1) {
		r, err := openGatewaySession(ctx, e.Lists, nil)
		if err != nil {
			fail(err)
			continue
		}
		t0 := time.Now()
		_, err = listAll(ctx, r)
		first = append(first, time.Since(t0))
		if err != nil {
			fail(err)
		}
		closeSession(r)
	}
	slices.Sort(first)
	res.FirstP50 = percentile(first, 0.5)
	r, err := openGatewaySession(ctx, e.Lists, nil)
	if err != nil {
		fail(err)
		return res
	}
	defer closeSession(r)
	if _, err := listAll(ctx, r); err != nil { // loads the session's catalogue
		fail(err)
	}
	lat := make([]time.Duration, 0, n)
	cpu0 := processCPU(e.Lists.Pid())
	for range n {
		t0 := time.Now()
		got, err := listAll(ctx, r)
		lat = append(lat, time.Since(t0))
		if err != nil {
			fail(err)
			continue
		}
		res.Tools = got
		res.Samples++
	}
	if res.Samples > 0 {
		res.CPU = (processCPU(e.Lists.Pid()) - cpu0) / time.Duration(res.Samples)
	}
	if want := len(e.ListServers) * GatewayListTools; res.Tools != want && res.Errors == 0 {
		fail(fmt.Errorf("a listing held %d tools, want %d", res.Tools, want))
	}
	slices.Sort(lat)
	res.P50, res.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	return res
}

// listAll reads every page of tools/list and returns how many tools it
// held.
func listAll(ctx context.Context, r *testenv.MCPRaw) (int, error) {
	total := 0
	cursor := ""
	for page := 1; ; page++ {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		rep, err := r.Call(ctx, fmt.Sprintf(`"list-%d"`, page), "tools/list", params)
		if err != nil {
			return total, err
		}
		msg := rep.ByID(fmt.Sprintf(`"list-%d"`, page))
		if msg == nil {
			return total, fmt.Errorf("tools/list: no answer in %d %.200q", rep.Status, rep.Body)
		}
		var out struct {
			Result *struct {
				Tools      []struct{} `json:"tools"`
				NextCursor string     `json:"nextCursor"`
			} `json:"result"`
		}
		if err := json.Unmarshal(msg, &out); err != nil || out.Result == nil {
			return total, fmt.Errorf("tools/list: %.200s", msg)
		}
		total += len(out.Result.Tools)
		if cursor = out.Result.NextCursor; cursor == "" || page > 100 {
			return total, nil
		}
	}
}

// SessionMemory is agentg's RSS around idle client sessions of the
// gateway: initialized, then left alone.
type SessionMemory struct {
	Sessions int   `json:"sessions"`
	Base     int64 `json:"rss_before"`
	Open     int64 `json:"rss_open"`
	// Listed is the RSS once every session has also listed the lists
	// gateway's catalogue (ListedSessions of them); 0 when not measured.
	ListedSessions int   `json:"listed_sessions,omitempty"`
	ListedBase     int64 `json:"listed_rss_before,omitempty"`
	Listed         int64 `json:"listed_rss,omitempty"`
}

// PerSession is the RSS growth per idle session.
func (m SessionMemory) PerSession() int64 {
	if m.Sessions == 0 {
		return 0
	}
	return (m.Open - m.Base) / int64(m.Sessions)
}

// PerListedSession is the RSS growth per session that has listed
// GatewayListServers × GatewayListTools tools.
func (m SessionMemory) PerListedSession() int64 {
	if m.ListedSessions == 0 {
		return 0
	}
	return (m.Listed - m.ListedBase) / int64(m.ListedSessions)
}

// MeasureSessionMemory opens n sessions on the calls gateway (one shared
// keep-alive client, so the figure is sessions, not connections) and
// reads agentg's RSS before and after; then listed sessions that each
// list the lists gateway's catalogue once. It closes them all after.
func (e *GatewayEnv) MeasureSessionMemory(n, listed int) (SessionMemory, error) {
	sm := SessionMemory{Sessions: n}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hc := testenv.MCPHTTPClient(testenv.MCPClientConfig{})
	defer hc.CloseIdleConnections()
	open := func(a *testenv.Agentg, n int, list bool) ([]*testenv.MCPRaw, error) {
		out := make([]*testenv.MCPRaw, n)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		sem := make(chan struct{}, 8)
		for i := range out {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				r, err := openGatewaySession(ctx, a, hc)
				if err == nil && list {
					_, err = listAll(ctx, r)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				out[i] = r
			})
		}
		wg.Wait()
		return out, errors.Join(errs...)
	}
	closeAll := func(rs []*testenv.MCPRaw) {
		for _, r := range rs {
			if r != nil {
				closeSession(r)
			}
		}
	}
	var err error
	if sm.Base, err = rss(e.Gateway.Pid()); err != nil {
		return sm, err
	}
	rs, err := open(e.Gateway, n, false)
	defer closeAll(rs)
	if err != nil {
		return sm, err
	}
	if sm.Open, err = rss(e.Gateway.Pid()); err != nil {
		return sm, err
	}
	if listed <= 0 {
		return sm, nil
	}
	if sm.ListedBase, err = rss(e.Lists.Pid()); err != nil {
		return sm, err
	}
	ls, err := open(e.Lists, listed, true)
	defer closeAll(ls)
	if err != nil {
		return sm, err
	}
	sm.ListedSessions = listed
	sm.Listed, err = rss(e.Lists.Pid())
	return sm, err
}
