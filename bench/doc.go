// Package bench measures what agentg costs on the wire, beside Squid: it
// runs the same client workloads directly against loopback origin servers,
// through agentg, and through Squid, and reports each proxy's figures as a
// ratio of direct.
//
// An Env holds the pieces, all on loopback, from the shared test
// environment (internal/testenv): a plain HTTP origin and an HTTPS origin
// (a leaf from a test CA), agentg as its own process the way users run it
// (`agentg serve` with Policy, events to --log-file, its CA in a data
// directory of the run), and Squid when installed (squid -N with a
// configuration generated here: ssl-bump for InterceptHost when built with
// OpenSSL, no cache, access log to a file, one worker). Run executes one
// Scenario in one Mode (Direct, Agentg, Squid) and returns a Result; RunSet
// runs a scenario in rounds of all its modes and compares the median runs
// (Ratio).
//
// Reading the ratios: agentg/direct = 1.00 means agentg adds nothing
// measurable; 0.50 means the proxied run achieved half the requests/s (or
// MB/s) of the direct run on the same machine. Clients, origins and proxy
// share the same cores, so absolute numbers say more about the machine than
// about the proxy; the ratios are what the targets in README.md are written
// against, and Squid's ratio, measured the same way in the same run, is the
// reference beside them.
//
// The agentg-load command (bench/cmd/agentg-load, run by scripts/bench.sh)
// is the harness; the Go benchmarks in this package (go test -bench .
// ./bench/) measure one request at a time, also through an in-process
// agentg whose allocations count in allocs/op.
package bench
