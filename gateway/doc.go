// Package gateway is the MCP gateway door: agentg as an MCP server that
// aggregates the policy's mcp.servers (the entries with an endpoint, and
// the command servers agentg runs) behind one endpoint, for agents that are not behind the proxy.
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
// Command servers (`command:` entries, run by agentg's supervisor,
// gateway/child) are served over stdio: each client session's upstream
// session with one is a guard stream session (mcp.Session, as `agentg
// wrap` uses, door "gateway", Server the entry's name) whose output meets
// the stdio multiplexer (stdiomux.go). A stdio server has one session;
// the multiplexer shares that one process (the supervisor's, whose
// identity, egress list and restarts are per server) among the client
// sessions, initializing it once per process and giving every request,
// progress token and subscription an id of its own on the child's stream,
// so answers go only to the session that asked. One process per client
// session was the other choice: it is not bounded by the policy (every
// client would start a process) and would break the per-server identity
// the floor checks. What stdio cannot attribute (a server's own request
// before 2026-07-28, while several sessions have calls in flight) is
// refused to the server, never guessed. When the process dies, the calls
// in flight get an error from the guard, the sessions end, and the next
// request opens a session on the restarted process.
//
// Hooks: an Authenticator names the agent (the default, ByAddress, as the
// proxy names one without credentials) or refuses the request with 401;
// Config.Children serves the command servers (their supervised
// processes); Config.Forward serves a server in process behind the same
// guard (a handler of its own); Config.Send sends what the guard
// let through as the agent's request (internal/app gives
// (*proxy.Server).Send: decided as the agent, with the credentials the
// agent's bindings attach), Config.Client without it (no credential).
//
// Files by job: gateway.go (the door: who, and which transport),
// auth.go (the Authenticator hook), session.go (one client session, its
// SDK server, and what servers send the client), catalogue.go (the
// merged lists and their routes), listcache.go (the servers' lists
// shared by an agent's sessions), calls.go (the client's requests routed
// to a server), upstream.go (upstream sessions: the Dialer hook,
// re-opening one the server forgot), legacy.go (the fallback to a
// 2024-11-05 HTTP+SSE server), guardhttp.go (the upstream HTTP through
// the guard), ssepoll.go (a call's stream the server closes for the
// client to poll), stdio.go (a command server's upstream sessions),
// stdiomux.go (their one process, shared), stdioroute.go (what it
// writes, routed), stdiomsg.go (the messages routed), events.go (the
// gateway's own events, and the parent every call's events name),
// tasks.go, tasks_upstream.go and tasks_init.go (2025-11-25 tasks, which
// the SDK does not serve: taken before it, sent upstream by the gateway,
// under task ids of its own), fastcall.go (a plain tools/call carried
// without the SDK on either hop, through the same guardTransport: the
// per-call hot path; fastanswer.go, its answer).
package gateway
