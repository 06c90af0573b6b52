// Package gateway is the MCP gateway door: agentg as an MCP server that
// aggregates the policy's mcp.servers (the entries with an endpoint)
// behind one endpoint, for agents that are not behind the proxy.
//
// The contract: a Gateway serves one URL over Streamable HTTP, every
// revision agentg's dissector speaks (2025-03-26 through 2025-11-25 with
// sessions, 2026-07-28 stateless), and the 2024-11-05 HTTP+SSE transport
// at the same URL. The client's side of the protocol (sessions, framing,
// pagination, list_changed, the 2026-07-28 multi round trip) is the
// official Go SDK's server; the gateway's own session ids are the SDK's
// random ones, never an upstream's.
//
// Behind each client session the gateway opens one upstream session per
// server, lazily, as an SDK client whose every HTTP request is served by
// the MCP guard (dissect/mcp): Guard.Serve with an Exchange whose door is
// "gateway", whose Server is the entry's name and whose Upstream sends
// what passes to the server. So every decision (tool rules, redaction,
// rate limits, pins, approvals) is the guard's, in the same events: the
// gateway holds no second decision path. It only routes: names in the
// catalogue (SERVER.TOOL by default, a prefix of the entry's own, or
// none) to a server and its own name, server-to-client requests
// (sampling, elicitation, roots) to the client session that caused them,
// progress and logging to the client, cancellation to the server.
//
// Hooks for what is still to come: an Authenticator names the agent (the
// default, ByAddress, as the proxy names one without credentials) or
// refuses the request with 401; Config.Forward serves a server in process
// behind the same guard (a stdio child); Config.Client is the outbound
// client (issue 16's checked one, once wired).
//
// Files by job: gateway.go (the door: who, and which transport),
// auth.go (the Authenticator hook), session.go (one client session, its
// SDK server, and what servers send the client), catalogue.go (the
// merged lists and their routes), calls.go (the client's requests routed
// to a server), upstream.go (upstream sessions: the Dialer hook,
// re-opening one the server forgot), legacy.go (the fallback to a
// 2024-11-05 HTTP+SSE server), guardhttp.go (the upstream HTTP through
// the guard), ssepoll.go (a call's stream the server closes for the
// client to poll), events.go (the gateway's own events, and the parent
// every call's events name), tasks.go, tasks_upstream.go and
// tasks_init.go (2025-11-25 tasks, which the SDK does not serve: taken
// before it, sent upstream by the gateway, under task ids of its own).
package gateway
