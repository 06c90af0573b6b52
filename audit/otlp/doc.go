// Package otlp is the event log's OpenTelemetry sink: it reads the audit
// events as they are logged (an audit subscription, like the metrics and
// the admin stream: every sink gets the same events) and exports each
// decision as one span over OTLP/HTTP, so a tracing backend shows what an
// agent did and why: a model turn is a span, the MCP tool calls it caused
// are its children, and the HTTP requests a tool's server made while the
// call was in flight are theirs.
//
// Contract:
//   - Off unless an endpoint is configured (New is only called then).
//   - Never on the request path: Log hands an event to the subscription's
//     bounded buffer (one non-blocking channel send); when it is full the
//     event is lost for this sink alone. Spans are built and exported by
//     one goroutine, in batches; an export that fails (a dead or slow
//     collector, bounded by a timeout, not retried) loses its batch.
//     Every lost span is counted (Dropped: the metric
//     agentg_otlp_dropped_spans_total) and a failing export is logged at
//     most once per warnEvery, without the headers (they may hold a
//     collector's token).
//   - Attributes follow the OpenTelemetry semantic conventions v1.41.0
//     (semconv/v1.41.0 in go.opentelemetry.io/otel): the GenAI ones
//     (gen_ai.operation.name, gen_ai.provider.name — the name v1.37 gave
//     what was gen_ai.system —, gen_ai.request.model, gen_ai.usage.*,
//     span "chat MODEL"), the MCP ones (mcp.method.name, mcp.session.id,
//     gen_ai.tool.name, span "tools/call TOOL") and the HTTP client ones;
//     agentg's own fields (rule, decision, agent) under agentg.*.
//   - Spans carry what the event carries and nothing else: events hold no
//     secret value (audit's contract), so neither do spans. Tool
//     arguments and message text are left out.
//   - Trace and span ids are derived from event ids (link.go), so that
//     spans exported at different times, in any order, still join.
package otlp
