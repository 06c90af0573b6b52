// Package limit holds the buckets behind the policy's rate limits
// (Rates: MCP calls, DNS queries) and quotas (Quotas: plain HTTP(S)
// egress, requests and bytes per period) on one kind of sharded table.
// A rate is a budget too: a burst that refills continuously; Rates keeps
// golang.org/x/time/rate's arithmetic for it, Quotas adds debt (Charge,
// for bytes counted after they flowed).
//
// Contract, for both:
//   - Nothing blocks or queues: every call answers at once whether the
//     key may pass and, when not, how long until it could.
//   - Buckets live in a sharded table (table.go): sharded locks, not the
//     state store, whose one writer lock would serialise every call.
//     A bucket is dropped only when it is full again and idle for
//     Options.IdleAfter, so eviction never lets a key past its limit.
//   - Bounded (Options.MaxBuckets): a new key past the bound is refused
//     (fail closed), never admitted unmetered.
//   - The limit is given on every call, as the policy in force says it;
//     a reload that changes it applies to existing buckets.
package limit
