// Package mcp is the MCP guard: it decides the Model Context Protocol
// exchanges a door hands it, message by message, in both directions.
//
// The contract: a door (the proxy's exchange path today; the gateway and
// the stdio wrap next) builds an Exchange (who, which server binding, the
// checked destination, the policy engine in force, and the Upstream that
// sends a request on and writes its answer) and calls Guard.Serve with the
// client's request and a writer in the framing the client waits for. The
// guard reads every message with the strict wire layer (dissect/mcp/wire,
// which imports no agentg package), asks every policy question through
// enforce.go (verdicts allow, deny, approve; obligations redact,
// rate-limit, pin checks), sends on only what is allowed, through the
// Upstream and nothing else, and rewrites the answers as they stream back
// (respond.go, rewrite.go). What cannot be read or checked is refused in
// the client's framing (a JSON-RPC error, a tool-error result) and logged
// with the rule that refused it: one decision, one event.
//
// The guard knows no door: it imports neither proxy nor mitm, and nothing
// rides in a request's context for it to carry unknowingly.
//
// Files by job: guard.go (the entry, and a POST read and checked),
// exchange.go (a POST's messages decided, held and sent on), enforce.go
// (the enforcer: every policy question), holdcall.go, inputrequired.go
// and elicit.go (holding: calls held until decided), rewrite.go (answers:
// what the server sends back, filtered and redacted), respond.go and
// stream.go (the answer's framing, a POST's and a GET stream's),
// withhold.go (answers withheld for their content type), nonpost.go (GET,
// DELETE and upgrades), and the session state (ids.go, links.go,
// params.go, events.go). A door with no HTTP around its messages (stdio:
// `agentg wrap`, the gateway's command servers) enters through
// session.go, one message at a time, into the same exchange and answers
// code; causes.go and egress.go attribute such a server's own egress to
// the tool call in flight and pin the hosts each tool reaches.
// llmlink.go ties each tools/call to the model turn that asked for it
// (Guard.Turns, the turns the proxy reads), or marks it unrequested.
package mcp
