package otlp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentg/agentg/audit"
)

// Defaults for Config's zero values.
const (
	DefaultQueue   = 4096
	DefaultTimeout = 10 * time.Second

	flushEvery = time.Second // a batch waits at most this long
	maxBatch   = 512         // spans per export
	warnEvery  = 30 * time.Second
	// A cause is waited for this long (link.go): a tool call's requests
	// are logged before it, and wait for as long as the call lasts.
	causeWait  = 30 * time.Second
	maxPending = 8192
	maxSeen    = 32768
	// closeTimeout bounds the last export, on shutdown.
	closeTimeout = 2 * time.Second
)

// Config is an OTLP sink's setting.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP URL (http or https): a base
	// URL (http://host:4318) gets /v1/traces, a URL with a path is used
	// as it is.
	Endpoint string
	// Headers are sent with every export (a collector's token). They
	// are never logged.
	Headers map[string]string
	// Queue is how many events may wait for the exporter; past it they
	// are dropped, counted. 0: DefaultQueue.
	Queue int
	// Timeout bounds one export; 0: DefaultTimeout.
	Timeout time.Duration
	// Dialer dials the collector (agentg's mark on its own connections);
	// nil: a plain one.
	Dialer *net.Dialer
	// Own, when set, says which addresses are agentg's own listeners: a
	// collector address that is one is never connected to (exports would
	// become requests to agentg, and their events spans to export).
	Own func(netip.AddrPort) bool
	// Version is agentg's, as service.version.
	Version string
}

var errOwnAddr = errors.New("the OTLP endpoint is one of agentg's own addresses: refused")

// ParseEndpoint checks an endpoint and returns the URL exports go to.
func ParseEndpoint(s string) (string, error) {
	// The URL is never echoed whole: a password in it would be shown.
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "", errors.New("OTLP endpoint: not a URL; want http://HOST:PORT or https://HOST:PORT[/PATH]")
	}
	switch {
	case u.User != nil:
		return "", errors.New("OTLP endpoint: a URL with credentials is refused; send them as a header (--otlp-header)")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("OTLP endpoint %s: the scheme must be http or https", u.Redacted())
	case u.Host == "":
		return "", fmt.Errorf("OTLP endpoint %s: no host", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("OTLP endpoint %s: no query or fragment", u.Redacted())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Sink exports the events of one audit.Logger as spans.
type Sink struct {
	sub      *audit.Subscription
	exp      *otlptrace.Exporter
	tracer   trace.Tracer
	tp       *sdktrace.TracerProvider
	link     *linker
	zl       *zerolog.Logger
	endpoint string
	timeout  time.Duration

	batch    []sdktrace.ReadOnlySpan // filled by collect, in run's goroutine
	failed   atomic.Uint64           // spans lost to failed exports
	exported atomic.Uint64

	// The export error being warned about, and when it last was.
	lastWarn  time.Time
	lostSince uint64

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// New starts exporting log's events. zl receives the sink's own
// messages (a failing export).
func New(log *audit.Logger, zl *zerolog.Logger, cfg Config) (*Sink, error) {
	endpoint, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	d := &net.Dialer{}
	if cfg.Dialer != nil {
		*d = *cfg.Dialer
	}
	if own := cfg.Own; own != nil {
		// Checked on the address connect(2) gets, after resolution.
		prev := d.Control
		d.Control = func(network, address string, c syscall.RawConn) error {
			if ap, err := netip.ParseAddrPort(address); err == nil && own(ap) {
				return errOwnAddr
			}
			if prev != nil {
				return prev(network, address, c)
			}
			return nil
		}
	}
	// agentg's own client: never through a proxy from the environment
	// (agentg may be its own HTTPS_PROXY), its sockets marked.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext, MaxIdleConns: 2,
		IdleConnTimeout: time.Minute, ForceAttemptHTTP2: true}}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint), otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithTimeout(cfg.Timeout),
		// One attempt: a retry would hold the next batch behind a dead
		// collector; what fails is counted and said instead.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter for %s: %w", endpoint, err)
	}
	s := &Sink{exp: exp, zl: zl, endpoint: endpoint, timeout: cfg.Timeout, stop: make(chan struct{}), done: make(chan struct{})}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("agentg"), semconv.ServiceVersion(cfg.Version))
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithIDGenerator(derivedIDs{}),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(collector{s}))
	s.tracer = s.tp.Tracer("github.com/agentg/agentg/audit/otlp")
	s.link = newLinker(s.span, maxSeen, maxPending, causeWait)
	s.sub = log.Subscribe(audit.SubscribeOptions{Buffer: cfg.Queue})
	go s.run()
	return s, nil
}

// Dropped is how many spans were lost: events the queue had no room for
// and spans whose export failed.
func (s *Sink) Dropped() uint64 {
	if s == nil {
		return 0
	}
	return s.sub.Dropped() + s.failed.Load()
}

// Counts is Exported and Dropped, for the metrics.
func (s *Sink) Counts() (exported, dropped uint64) { return s.Exported(), s.Dropped() }

// Exported is how many spans the collector took.
func (s *Sink) Exported() uint64 {
	if s == nil {
		return 0
	}
	return s.exported.Load()
}

func (s *Sink) run() {
	defer close(s.done)
	tick := time.NewTicker(flushEvery)
	defer tick.Stop()
	for {
		select {
		case e := <-s.sub.Events():
			s.link.add(e, time.Now())
			if len(s.batch) >= maxBatch {
				s.flush()
			}
		case now := <-tick.C:
			s.link.expire(now)
			s.flush()
		case <-s.stop:
			// What was logged before Close is exported: the queue, then
			// the events still waiting for a cause.
			s.sub.Close()
			s.drain()
			s.link.flush()
			// A dead collector must not hold agentg's exit for a whole
			// export timeout.
			s.timeout = min(s.timeout, closeTimeout)
			s.flush()
			return
		}
	}
}

// drain places the events still queued.
func (s *Sink) drain() {
	for {
		select {
		case e := <-s.sub.Events():
			s.link.add(e, time.Now())
		default:
			return
		}
	}
}

// span builds and ends e's span where the linker placed it; collect
// gathers it into the batch.
func (s *Sink) span(e *audit.Event, p placed) {
	name, kind, attrs := describe(e, make([]attribute.KeyValue, 0, 24))
	ctx := withIDs(context.Background(), p.trace, spanOf(e.ID))
	if p.parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: p.trace, SpanID: p.parent, TraceFlags: trace.FlagsSampled, Remote: true}))
	}
	start := e.Time
	if start.IsZero() {
		start = time.Now() // an event that says no time: when it was seen
	}
	_, sp := s.tracer.Start(ctx, name, trace.WithTimestamp(start), trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	if c, desc := status(e); c != 0 {
		sp.SetStatus(c, desc)
	}
	end := start.Add(max(e.Duration, 0))
	if e.Duration == 0 && e.MCP != nil {
		end = start.Add(max(e.MCP.Upstream, 0))
	}
	sp.End(trace.WithTimestamp(end))
}

// flush exports the batch: one attempt, bounded by the timeout.
func (s *Sink) flush() {
	if len(s.batch) == 0 {
		return
	}
	batch := s.batch
	s.batch = make([]sdktrace.ReadOnlySpan, 0, maxBatch)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	err := s.exp.ExportSpans(ctx, batch)
	cancel()
	if err == nil {
		s.exported.Add(uint64(len(batch)))
		if s.lostSince > 0 {
			s.zl.Info().Str("otlp_endpoint", s.endpoint).Uint64("spans_lost", s.lostSince).Msg("OTLP export works again")
			s.lostSince = 0
		}
		return
	}
	s.failed.Add(uint64(len(batch)))
	s.lostSince += uint64(len(batch))
	if now := time.Now(); now.Sub(s.lastWarn) >= warnEvery {
		s.lastWarn = now
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "no answer within " + s.timeout.String()
		}
		s.zl.Warn().Str("otlp_endpoint", s.endpoint).Str("error", msg).Uint64("spans_lost", s.lostSince).
			Msg("OTLP export failed; spans are dropped and counted in agentg_otlp_dropped_spans_total (said at most every " + warnEvery.String() + ")")
	}
}

// Close exports what is queued (within the timeout) and stops. It is
// safe to call on a nil Sink and more than once.
func (s *Sink) Close() {
	if s == nil {
		return
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	s.tp.Shutdown(ctx)
	s.exp.Shutdown(ctx)
}

// collector is the SDK span processor that hands each ended span to the
// batch. Spans are only started and ended in run's goroutine, so the
// batch needs no lock.
type collector struct{ s *Sink }

func (c collector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c collector) OnEnd(sp sdktrace.ReadOnlySpan)                  { c.s.batch = append(c.s.batch, sp) }
func (c collector) Shutdown(context.Context) error                  { return nil }
func (c collector) ForceFlush(context.Context) error                { return nil }
