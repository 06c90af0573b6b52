package bench

import (
	"cmp"
	"slices"
	"time"
)

// Result is one scenario run in one mode.
type Result struct {
	Scenario    string        `json:"scenario"`
	Mode        Mode          `json:"mode"`
	Concurrency int           `json:"concurrency"`
	Requests    int64         `json:"requests"`
	Errors      int64         `json:"errors"`
	FirstError  string        `json:"first_error,omitempty"`
	Bytes       int64         `json:"bytes"` // response body bytes received
	Elapsed     time.Duration `json:"elapsed_ns"`
	ReqPerSec   float64       `json:"req_per_sec"`
	MBPerSec    float64       `json:"mb_per_sec"` // 10^6 bytes of body per second
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	// ProxyCPU is the CPU time (user and system) the proxy's process used
	// during the measured part of the run, and HarnessCPU that of this
	// process (clients and origins). On 2 cores shared by all three, they
	// show where the cores went.
	ProxyCPU   time.Duration `json:"proxy_cpu_ns,omitempty"`
	HarnessCPU time.Duration `json:"harness_cpu_ns"`
}

// ProxyCPUPerRequest is ProxyCPU over Requests (0 without either).
func (r Result) ProxyCPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.ProxyCPU / time.Duration(r.Requests)
}

// ProxyCPUPerGB is ProxyCPU per 10^9 body bytes (0 without either).
func (r Result) ProxyCPUPerGB() time.Duration {
	if r.Bytes == 0 {
		return 0
	}
	return time.Duration(float64(r.ProxyCPU) * 1e9 / float64(r.Bytes))
}

func (r *Result) setCPU(proxy, harness time.Duration, proxied bool) {
	if proxied {
		r.ProxyCPU = proxy
	}
	r.HarnessCPU = harness
}

// Ratio is a proxied mode's result as a fraction of direct's.
type Ratio struct {
	Scenario  string  `json:"scenario"`
	Mode      Mode    `json:"mode"`        // the proxied mode compared with direct
	ReqPerSec float64 `json:"req_per_sec"` // proxied/direct, higher is better
	MBPerSec  float64 `json:"mb_per_sec"`  // proxied/direct, higher is better
	P50       float64 `json:"p50"`         // proxied/direct, lower is better
	P99       float64 `json:"p99"`         // proxied/direct, lower is better
	Metric    string  `json:"metric"`
	// Target is the floor for the judged figure (Metric) of agentg; for
	// Squid it is 0 and Met is true: Squid is a reference, not judged.
	Target float64 `json:"target,omitempty"`
	Met    bool    `json:"met"`
	// Runs holds the judged ratio of each round (the proxied run against
	// the direct run of the same round); the fields above compare the
	// median runs.
	Runs []float64 `json:"runs,omitempty"`
}

// Median returns the run with the median figure of metric ("MB/s" or
// anything else for req/s); with an even count, the lower middle one.
func Median(rs []Result, metric string) Result {
	if len(rs) == 0 {
		return Result{}
	}
	key := func(r Result) float64 { return r.ReqPerSec }
	if metric == "MB/s" {
		key = func(r Result) float64 { return r.MBPerSec }
	}
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b Result) int { return cmp.Compare(key(a), key(b)) })
	return s[(len(s)-1)/2]
}

// Judged is the ratio the scenario's target is about.
func (r Ratio) Judged() float64 {
	if r.Metric == "MB/s" {
		return r.MBPerSec
	}
	return r.ReqPerSec
}

// newResult fills the rates and percentiles from raw counts and latency
// samples (which it sorts).
func newResult(sc string, m Mode, conc int, reqs, errs, bytes int64, elapsed time.Duration, lat []time.Duration) Result {
	r := Result{Scenario: sc, Mode: m, Concurrency: conc, Requests: reqs, Errors: errs, Bytes: bytes, Elapsed: elapsed}
	if s := elapsed.Seconds(); s > 0 {
		r.ReqPerSec = float64(reqs) / s
		r.MBPerSec = float64(bytes) / 1e6 / s
	}
	slices.Sort(lat)
	r.P50 = percentile(lat, 0.50)
	r.P99 = percentile(lat, 0.99)
	return r
}

// percentile returns the nearest-rank q-quantile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Compare returns proxied's figures as a ratio of direct's; agentg's are
// judged against the scenario's target.
func Compare(sc Scenario, direct, proxied Result) Ratio {
	r := Ratio{
		Scenario:  sc.Name,
		Mode:      proxied.Mode,
		ReqPerSec: div(proxied.ReqPerSec, direct.ReqPerSec),
		MBPerSec:  div(proxied.MBPerSec, direct.MBPerSec),
		P50:       div(float64(proxied.P50), float64(direct.P50)),
		P99:       div(float64(proxied.P99), float64(direct.P99)),
		Metric:    sc.Metric,
	}
	if proxied.Mode == Agentg {
		r.Target = sc.Target
	}
	r.Met = r.Judged() >= r.Target
	return r
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
