package admin

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/buildinfo"
)

// The metrics: counters and histograms are derived from the audit events
// by one goroutine (metrics cost the request path one channel send per
// event), gauges are read when scraped. Every label value that an agent or
// a server could choose (tool names) is bounded in number: past maxSeries
// distinct values a label reads "_other", so no client can grow agentg's
// memory by inventing names.

const (
	namespace = "agentg"
	// maxSeries bounds the distinct values of one label set a counter
	// keeps (rule ids, servers and tools).
	maxSeries = 2000
	other     = "_other"
)

// durationBuckets span a cached decision (sub-millisecond) to a long
// tunnel or stream (minutes).
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800}

type metrics struct {
	reg *prometheus.Registry

	decisions   *prometheus.CounterVec   // kind, decision, rule
	duration    *prometheus.HistogramVec // kind
	bytes       *prometheus.CounterVec   // kind, direction
	toolCalls   *prometheus.CounterVec   // server, tool, decision
	mcpUpstream *prometheus.HistogramVec // server
	redactions  *prometheus.CounterVec   // rule
	dnsQueries  *prometheus.CounterVec   // decision
	reloads     prometheus.Counter
	reloadFails prometheus.Counter
	llm         *llmMetrics // metrics_llm.go

	// Only the event goroutine touches these.
	ruleLabels bounded
	toolLabels bounded
	series     map[seriesKey]eventSeries // observe's memo; at most maxMemo

	// hits counts events by rule (RuleGroup), for /v1/rules.
	mu   sync.Mutex
	hits map[string]uint64
}

// Gauges are read when /metrics is scraped; any may be nil.
type Gauges struct {
	OpenTunnels func() int
	// Leaves returns how many leaf certificates were issued and how many
	// handshakes were served one from the cache.
	Leaves func() (issued, cacheHits uint64)
	// PendingApprovals is how many calls are held for approval now.
	PendingApprovals func() int
	// DNSMemory is the DNS filter's memory budget and its use.
	DNSMemory func() DNSMemory
	// Build is the binary's identity, said by agentg_build_info; its
	// zero value says nothing.
	Build buildinfo.Info
	// OTLP is how many spans the OpenTelemetry export sent and lost
	// (audit/otlp); nil when it is off.
	OTLP func() (exported, dropped uint64)
}

// DNSMemory is the DNS filter's memory budget (dns.memory), its two
// shares, and what each holds.
type DNSMemory struct {
	Limit                           int64
	CacheBytes, CacheMaxBytes       int64
	CacheEntries                    int
	BindingsBytes, BindingsMaxBytes int64
	BindingsRows                    int
}

func newMetrics(g Gauges, log *audit.Logger, streams func() int, metricsDropped func() uint64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "decisions_total",
			Help: "Decisions (one per audit event) by event kind, outcome and rule id; a list's entries count under the list's id."},
			[]string{"kind", "decision", "rule"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "duration_seconds",
			Help: "How long what an event records took, by kind: an HTTP exchange, a tunnel's life, an MCP message to its answer, a DNS query.", Buckets: durationBuckets},
			[]string{"kind"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "bytes_total",
			Help: "Bytes relayed, by event kind and direction (up: client to upstream); a request inside a tunnel counts under http and under its tunnel."},
			[]string{"kind", "direction"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "mcp_tool_calls_total",
			Help: "MCP tools/call requests by server (policy binding), tool and decision."},
			[]string{"server", "tool", "decision"}),
		mcpUpstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "mcp_upstream_duration_seconds",
			Help: "MCP request to its answer from the server, as agentg saw it, by server.", Buckets: durationBuckets},
			[]string{"server"}),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "mcp_redactions_total",
			Help: "MCP redact rules that fired, by rule id."}, []string{"rule"}),
		dnsQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "dns_queries_total",
			Help: "DNS queries answered by the DNS filter, by decision."}, []string{"decision"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "policy_reloads_total",
			Help: "Policy reloads tried (file change, SIGHUP, admin API), failed ones included."}),
		reloadFails: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "policy_reload_failures_total",
			Help: "Policy reloads that failed; the previous policy stayed in force."}),
		ruleLabels: newBounded(maxSeries),
		toolLabels: newBounded(maxSeries),
		series:     map[seriesKey]eventSeries{},
		hits:       map[string]uint64{},
	}
	m.reg.MustRegister(m.decisions, m.duration, m.bytes, m.toolCalls, m.mcpUpstream, m.redactions, m.dnsQueries, m.reloads, m.reloadFails)
	m.llm = newLLMMetrics(m.reg)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	counter := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f))
	}
	if g.Build.Version != "" {
		// The build_info convention: a gauge of constant 1 whose labels
		// name the build, so a dashboard can join any series on it.
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
			Help:        "The running agentg: its version, VCS revision and Go version (always 1).",
			ConstLabels: prometheus.Labels{"version": g.Build.Version, "revision": g.Build.Revision, "goversion": g.Build.GoVersion}},
			func() float64 { return 1 }))
	}
	if g.OpenTunnels != nil {
		gauge("open_tunnels", "CONNECT tunnels open now.", func() float64 { return float64(g.OpenTunnels()) })
	}
	if g.PendingApprovals != nil {
		gauge("approvals_pending", "Calls held for approval now.", func() float64 { return float64(g.PendingApprovals()) })
	}
	if g.DNSMemory != nil {
		part := func(name, help, which string, f func(DNSMemory) float64) {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help,
				ConstLabels: prometheus.Labels{"part": which}}, func() float64 { return f(g.DNSMemory()) }))
		}
		const used = "Memory the DNS filter holds, by part (cache, bindings), as charged against dns.memory."
		const limit = "The DNS filter's memory budget (dns.memory, part total) and each part's share of it."
		part("dns_memory_bytes", used, "cache", func(d DNSMemory) float64 { return float64(d.CacheBytes) })
		part("dns_memory_bytes", used, "bindings", func(d DNSMemory) float64 { return float64(d.BindingsBytes) })
		part("dns_memory_limit_bytes", limit, "total", func(d DNSMemory) float64 { return float64(d.Limit) })
		part("dns_memory_limit_bytes", limit, "cache", func(d DNSMemory) float64 { return float64(d.CacheMaxBytes) })
		part("dns_memory_limit_bytes", limit, "bindings", func(d DNSMemory) float64 { return float64(d.BindingsMaxBytes) })
		gauge("dns_cache_entries", "Answers the DNS filter's cache holds.", func() float64 { return float64(g.DNSMemory().CacheEntries) })
		gauge("dns_bindings", "IP-to-name bindings the DNS filter holds for the transparent listener.", func() float64 { return float64(g.DNSMemory().BindingsRows) })
	}
	if g.OTLP != nil {
		counter("otlp_exported_spans_total", "Events exported as OpenTelemetry spans that the collector took.",
			func() float64 { n, _ := g.OTLP(); return float64(n) })
		counter("otlp_dropped_spans_total", "Events the OpenTelemetry export lost: its queue was full (it is never waited for) or the collector failed or did not answer in time.",
			func() float64 { _, n := g.OTLP(); return float64(n) })
	}
	if g.Leaves != nil {
		counter("leaf_certificates_issued_total", "Leaf certificates signed for intercepted hosts.", func() float64 { n, _ := g.Leaves(); return float64(n) })
		counter("leaf_cache_hits_total", "Intercepted handshakes served a leaf from the cache.", func() float64 { _, n := g.Leaves(); return float64(n) })
	}
	counter("audit_subscriber_dropped_total", "Events a subscriber (metrics, an event stream) missed because it read too slowly.",
		func() float64 { return float64(log.Dropped()) })
	counter("metrics_events_dropped_total", "Events the metrics missed because they were read too slowly: counters undercount by this much.",
		func() float64 { return float64(metricsDropped()) })
	m.reg.MustRegister(sinkDrops{log: log, desc: prometheus.NewDesc(namespace+"_events_dropped_total",
		"Decision events the event log could not write (a full disk, a quota, an I/O error), by sink and reason; the decisions were enforced.",
		[]string{"sink", "reason"}, nil)})
	gauge("admin_event_streams", "Admin API event streams open now.", func() float64 { return float64(streams()) })
	return m
}

// sinkDrops exports the audit sink's lost events (audit.DroppedBySink),
// read when scraped.
type sinkDrops struct {
	log  *audit.Logger
	desc *prometheus.Desc
}

func (d sinkDrops) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d sinkDrops) Collect(ch chan<- prometheus.Metric) {
	for _, s := range d.log.DroppedBySink() {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(s.Events), s.Sink, s.Reason)
	}
}

// kindTunnelOpen is the kind of a tunnel's open event (proxy.KindTunnelOpen).
const kindTunnelOpen = "tunnel-open"

// seriesKey is what picks an event's decision, duration and DNS series.
type seriesKey struct{ kind, decision, rule string }

// eventSeries are those series, looked up once (client_golang hashes and
// checks every label on each lookup, a tenth of a logged DNS query's CPU).
type eventSeries struct {
	decisions prometheus.Counter
	duration  prometheus.Observer
	dns       prometheus.Counter // nil but for kind dns
}

// maxMemo bounds observe's memo; past it the series are looked up each
// time. Kinds and decisions are few and rules are the policy's (bounded
// by ruleLabels), so it is rarely reached.
const maxMemo = 4096

// seriesOf returns the series for k, looking them up the first time.
func (m *metrics) seriesOf(k seriesKey) (eventSeries, bool) {
	if s, ok := m.series[k]; ok {
		return s, true
	}
	kind, decision := label(k.kind), label(k.decision)
	var s eventSeries
	var err error
	if s.decisions, err = m.decisions.GetMetricWithLabelValues(kind, decision, m.ruleLabels.get(label(k.rule))); err != nil {
		return s, false
	}
	if s.duration, err = m.duration.GetMetricWithLabelValues(kind); err != nil {
		return s, false
	}
	if k.kind == "dns" {
		if s.dns, err = m.dnsQueries.GetMetricWithLabelValues(decision); err != nil {
			return s, false
		}
	}
	if len(m.series) < maxMemo {
		m.series[k] = s
	}
	return s, true
}

// observe counts one event; rule is its rule's counting id (RuleGroup).
func (m *metrics) observe(e *audit.Event, rule string) {
	if e.Kind == kindTunnelOpen {
		// Not a decision: the tunnel's own event, when it closes, is
		// counted (with its bytes and duration) once.
		return
	}
	kind, decision := label(e.Kind), label(e.Decision)
	if s, ok := m.seriesOf(seriesKey{e.Kind, e.Decision, rule}); ok {
		s.decisions.Inc()
		if e.Duration > 0 {
			s.duration.Observe(e.Duration.Seconds())
		}
		if s.dns != nil {
			s.dns.Inc()
		}
	}
	if e.BytesUp > 0 {
		add(m.bytes, float64(e.BytesUp), kind, "up")
	}
	if e.BytesDown > 0 {
		add(m.bytes, float64(e.BytesDown), kind, "down")
	}
	if mc := e.MCP; mc != nil {
		server := label(mc.Server)
		if e.Method == "tools/call" && mc.Tool != "" {
			tool := m.toolLabels.get(server + "\x00" + label(mc.Tool))
			if tool != other {
				_, tool, _ = strings.Cut(tool, "\x00")
			}
			inc(m.toolCalls, server, tool, decision)
		}
		if mc.Upstream > 0 {
			observe(m.mcpUpstream, mc.Upstream, server) // servers are the policy's bindings: bounded
		}
		for _, r := range mc.Redactions {
			inc(m.redactions, m.ruleLabels.get(label(r)))
		}
	}
	if e.LLM != nil {
		m.llm.observe(e)
	}
	m.mu.Lock()
	if rule != "" {
		m.countHit(rule)
	}
	if e.MCP != nil {
		for _, r := range e.MCP.Redactions {
			m.countHit(r)
		}
	}
	m.mu.Unlock()
}

// countHit adds one to rule's hits; past maxSeries rules the rest share
// one count. Call with mu held.
func (m *metrics) countHit(rule string) {
	if _, ok := m.hits[rule]; !ok && len(m.hits) >= maxSeries {
		rule = other
	}
	m.hits[rule]++
}

func (m *metrics) hitCounts() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.hits))
	for k, v := range m.hits {
		out[k] = v
	}
	return out
}

func (m *metrics) observeReload(err error) {
	m.reloads.Inc()
	if err != nil {
		m.reloadFails.Inc()
	}
}

// The helpers below never panic: client_golang panics on a label value
// that is not UTF-8, and label makes every value valid first.
func inc(v *prometheus.CounterVec, lv ...string) { add(v, 1, lv...) }

func add(v *prometheus.CounterVec, n float64, lv ...string) {
	if c, err := v.GetMetricWithLabelValues(lv...); err == nil {
		c.Add(n)
	}
}

func observe(v *prometheus.HistogramVec, d time.Duration, lv ...string) {
	if o, err := v.GetMetricWithLabelValues(lv...); err == nil {
		o.Observe(d.Seconds())
	}
}

// label makes s a valid label value of bounded length.
func label(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// bounded hands back the values it has seen, up to max of them; any new
// value past that is "_other".
type bounded struct {
	max  int
	seen map[string]struct{}
}

func newBounded(max int) bounded { return bounded{max: max, seen: map[string]struct{}{}} }

func (b *bounded) get(v string) string {
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return other
	}
	b.seen[v] = struct{}{}
	return v
}
