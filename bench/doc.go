// Package bench measures what agentg costs on the wire: it runs the same
// client workloads directly against loopback origin servers and through an
// agentg proxy, and reports agentg's figures as a ratio of direct.
//
// An Env holds the pieces: a plain HTTP origin, an HTTPS origin (with a
// self-signed certificate generated at start and trusted by the clients), and
// an agentg proxy built in-process with proxy.New and a CA of its own for
// TLS interception (or an external agentg given by URL). Run executes one
// Scenario in one Mode (Direct; Agentg; or, for HTTPS, Tunnel through a plain
// CONNECT tunnel and Intercepted through one agentg terminates) and returns a
// Result; RunSet runs a scenario in all its modes, and Ratio compares a
// proxied Result with the direct one.
//
// Reading the ratios: agentg/direct = 1.00 means agentg adds nothing
// measurable; 0.50 means the proxied run achieved half the requests/s (or
// MB/s) of the direct run on the same machine. Client, proxy and origins
// share the same cores, so absolute numbers say more about the machine than
// about agentg; the ratios are what the targets in README.md are written
// against.
//
// The agentg-load command (bench/cmd/agentg-load) is the harness; the Go
// benchmarks in this package (go test -bench . ./bench/) measure one request
// at a time with allocation counts.
package bench
