// Package admin is agentg's control plane: a listener of its own (never
// the proxy's) serving health and readiness, Prometheus metrics, policy
// reload, the live stream of audit events, the policy's rules with their
// hit counts, the MCP inventory and pins, the policy's secrets (names,
// sources, bindings, last use; never a value), the registry of configured
// MCP servers (registry.go: the gateway's live state is asked through
// ServerStatus), and a web console over them.
// Package cmd/agentg wires it; this package holds the handlers, the
// token, the listener, the console and a client.
//
// The contract:
//   - Every endpoint, health included, wants the bearer token
//     (Authorization: Bearer TOKEN), compared in constant time; without
//     it the answer is 401 and nothing else is learned (unknown paths
//     included). The web console's files under /console/ are the one
//     exception: they hold no data, and the page asks the API with the
//     token a person enters (console.go).
//   - The admin listener's addresses are agentg's own: whoever wires it
//     must give them to the proxy (proxy.Server.AddOwnAddr), which then
//     refuses them as builtin:self whatever a policy opens, so an agent
//     can never reach this API through agentg.
//   - The request path does not change for it: metrics, hit counts and the
//     event stream are derived from the audit events (audit.Logger
//     Subscribe, which never waits: a slow reader loses events, counted),
//     gauges are read through small functions when scraped.
//   - Answers are JSON ({"error": {"code", "message"}} on failure); lists
//     are {"items": [...]}; the event stream is Server-Sent Events whose
//     data lines are the events exactly as logged.
//   - Handlers mounted later (approvals) go through Server.Handle, behind
//     the same token.
package admin
