package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The credentials bench (issue 16): what attaching a secret and the leak
// guard cost agentg per request, in agentg's own CPU time (/proc), on the
// intercepted keep-alive workload. Two agentg processes run against the
// same origins:
//
//   - plain: the bench policy, no credentials section;
//   - held: the same policy plus CredsSecrets secrets held (written
//     inline: the bench has no secret store to read) and one binding,
//     CredsBinding, that sets Authorization on InterceptHost paths under
//     /cred/.
//
// Injection is judged inside held: GETs under /cred/ (the binding matches
// and its header is set) against the same GETs elsewhere (no binding
// matches), so both pay the same leak guard and differ only by the
// injection. The leak guard is judged across the two processes: POSTs of
// a CredsBody-byte body to a path no binding names, through held (every
// held value searched for in the headers, the URL and the body) against
// the same POSTs through plain (nothing to search).

// Sizes of the credentials bench.
const (
	CredsSecrets = 100      // secrets held by the held process
	CredsBody    = 16 << 10 // body of each POST of the leak-guard runs
	CredsBinding = "bench-cred"
	credsPath    = "/cred"
)

// CredsPolicy is the credentials section of the held process: n secrets
// of 40 characters (the length of a GitHub token) and one binding.
func CredsPolicy(n int) (section string, values []string) {
	var b strings.Builder
	b.WriteString("credentials:\n  secrets:\n")
	for i := range n {
		v := "ghp_" + rand.Text()[:26] + fmt.Sprintf("%010d", i)
		values = append(values, v)
		fmt.Fprintf(&b, "    s%d: {insecure_inline: %s}\n", i, v)
	}
	fmt.Fprintf(&b, `  bindings:
    - id: %s
      host: %s
      path: %s/**
      secret: s0
      header: {name: Authorization, value: "Bearer {{secret}}"}
`, CredsBinding, InterceptHost, credsPath)
	return b.String(), values
}

// CredsReport is one run of the credentials bench: the median run of each
// workload (by agentg CPU per request) and each round's figure.
type CredsReport struct {
	Rounds int `json:"rounds"`

	NoBinding Result `json:"no_binding"` // held, GET, no binding matches
	Binding   Result `json:"binding"`    // held, GET, the binding sets Authorization
	// InjectCPU is Binding's agentg CPU per request over NoBinding's
	// (target < 1.05), and InjectRuns the same figure round by round.
	InjectCPU  float64   `json:"inject_cpu_ratio"`
	InjectRuns []float64 `json:"inject_runs"`

	Plain   Result `json:"plain_post"`   // plain, POST CredsBody bytes
	Guarded Result `json:"guarded_post"` // held, the same POST
	// GuardAdded is Guarded's agentg CPU per request less Plain's (target
	// < 10µs), and GuardRuns the same round by round.
	GuardAdded time.Duration   `json:"guard_added_ns"`
	GuardRuns  []time.Duration `json:"guard_runs_ns"`
}

// Met reports whether both targets were met.
func (r CredsReport) Met() bool { return r.InjectCPU < 1.05 && r.GuardAdded < 10*time.Microsecond }

// RunCreds starts the two processes, checks that each measures what it
// claims (the binding is attached; a held value sent where no binding
// names it is refused), and runs rounds of the four workloads.
func RunCreds(cfg Config, o Options, rounds int) (CredsReport, error) {
	cfg.Squid, cfg.SquidRequired = false, false
	plain, err := Start(cfg)
	if err != nil {
		return CredsReport{}, fmt.Errorf("starting the plain agentg: %w", err)
	}
	defer plain.Close()
	section, values := CredsPolicy(CredsSecrets)
	cfg.PolicyExtra = section
	held, err := Start(cfg)
	if err != nil {
		return CredsReport{}, fmt.Errorf("starting the agentg holding %d secrets: %w", CredsSecrets, err)
	}
	defer held.Close()

	sc, _ := ScenarioByName("intercept-keepalive")
	conc := max(o.Concurrency, 1)
	body := make([]byte, CredsBody)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	get := func(e *Env, name, path string) func() Result {
		return func() Result {
			url := e.InterceptBase + path + "/bytes?n=1024"
			return e.measure(name, sc, o, conc, func(ctx context.Context, c *http.Client) (int64, error) {
				return fetch(ctx, c, url, SmallBody)
			})
		}
	}
	post := func(e *Env, name string) func() Result {
		return func() Result {
			url := e.InterceptBase + "/post/bytes?n=1024"
			return e.measure(name, sc, o, conc, func(ctx context.Context, c *http.Client) (int64, error) {
				return send(ctx, c, http.MethodPost, url, body, SmallBody)
			})
		}
	}
	if err := held.checkCreds(sc, values); err != nil {
		return CredsReport{}, err
	}

	rep := CredsReport{Rounds: max(rounds, 1)}
	var nob, bnd, pln, grd []Result
	for range rep.Rounds {
		n, b := get(held, "creds-get-unbound", "")(), get(held, "creds-get-bound", credsPath)()
		p, g := post(plain, "creds-post-plain")(), post(held, "creds-post-held")()
		for _, r := range []Result{n, b, p, g} {
			if r.Errors > 0 {
				return rep, fmt.Errorf("%s: %d errors, the first: %s", r.Scenario, r.Errors, r.FirstError)
			}
		}
		nob, bnd, pln, grd = append(nob, n), append(bnd, b), append(pln, p), append(grd, g)
		rep.InjectRuns = append(rep.InjectRuns, cpuRatio(b, n))
		rep.GuardRuns = append(rep.GuardRuns, g.ProxyCPUPerRequest()-p.ProxyCPUPerRequest())
	}
	rep.NoBinding, rep.Binding = medianCPU(nob), medianCPU(bnd)
	rep.Plain, rep.Guarded = medianCPU(pln), medianCPU(grd)
	rep.InjectCPU = cpuRatio(rep.Binding, rep.NoBinding)
	rep.GuardAdded = rep.Guarded.ProxyCPUPerRequest() - rep.Plain.ProxyCPUPerRequest()
	return rep, nil
}

// checkCreds proves the held process does what the bench claims: a GET
// under /cred/ is logged with the binding, and a POST carrying a held
// value to a path no binding names is refused.
func (e *Env) checkCreds(sc Scenario, values []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := e.ClientFor(Agentg, sc, 1)
	defer c.CloseIdleConnections()
	if _, err := fetch(ctx, c, e.InterceptBase+credsPath+"/bytes?n=1024", SmallBody); err != nil {
		return fmt.Errorf("the bound GET failed: %w", err)
	}
	if _, err := e.Agentg.WaitEvent(ctx, func(ev map[string]any) bool { return ev["binding"] == CredsBinding }); err != nil {
		return fmt.Errorf("no event names binding %s: the bench would not measure injection: %w", CredsBinding, err)
	}
	leak := []byte("token=" + values[len(values)-1])
	if _, err := send(ctx, c, http.MethodPost, e.InterceptBase+"/post/bytes?n=1024", leak, SmallBody); err == nil ||
		!strings.Contains(err.Error(), "403") {
		return fmt.Errorf("a held value posted to an unbound path was not refused (%v): the bench would not measure the leak guard", err)
	}
	return nil
}

// measure runs one keep-alive workload (named name) of conc workers
// through agentg with a fresh client, charging agentg's CPU to it.
func (e *Env) measure(name string, sc Scenario, o Options, conc int, do func(context.Context, *http.Client) (int64, error)) Result {
	c := e.ClientFor(Agentg, sc, conc)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), o.Warmup+o.Duration+5*time.Minute)
	defer cancel()
	return keepAlive(ctx, name, Agentg, e.Agentg.Pid(), o, conc, func(ctx context.Context) (int64, error) { return do(ctx, c) })
}

// cpuRatio is a's agentg CPU per request over b's (0 without figures).
func cpuRatio(a, b Result) float64 {
	return div(float64(a.ProxyCPUPerRequest()), float64(b.ProxyCPUPerRequest()))
}

// medianCPU is the run with the median agentg CPU per request.
func medianCPU(rs []Result) Result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b Result) int { return int(a.ProxyCPUPerRequest() - b.ProxyCPUPerRequest()) })
	return s[(len(s)-1)/2]
}
