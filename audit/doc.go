// Package audit is agentg's one event schema and its sinks: every
// decision, whatever door it came through (explicit or transparent
// proxy, DNS filter, the MCP guard, held calls), becomes one Event, kind
// "http", "connect", "dns", "mcp" or "approval", so that "who went where,
// and which rule let them" is answered from one schema.
//
// Contract:
//   - One decision, one event, carrying the id of the rule that fired
//     (Rule, RuleSource). Events are linked, not repeated: each has an id
//     (NewID: a per-run random prefix and a counter) and names its
//     enclosing event (Parent: a request's tunnel, an outcome's request,
//     an approval step's held call).
//   - Log writes exactly one whole JSON line per Event; field names are
//     stable (documented in README.md) and zero-valued optional fields
//     are left out. Operational messages (Zerolog) share the stream.
//   - Log never blocks a decision on anything but the writer itself:
//     a buffered Logger (NewWithOptions, buffer.go) batches lines and
//     loses at most one interval to a crash; a log that cannot be written
//     (a full disk) is counted, reported on stderr and in SinkError, and
//     leaves no partial line (sink.go); subscribers (subscribe.go: the
//     metrics, the admin API's live stream) get the events as logged
//     through bounded buffers, and a slow one loses events, counted,
//     never slows Log.
//   - audit decides nothing: it records what others decided.
package audit
