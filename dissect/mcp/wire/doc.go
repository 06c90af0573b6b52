// Package wire reads and writes the Model Context Protocol on the wire: the
// strict JSON-RPC codec, the incremental Server-Sent Events framer,
// JSON-RPC errors and tool-error results agentg answers with, and the
// redaction of whole messages (every string and member name, the
// envelope checked instead; redact.go).
//
// The contract: the codec reads exactly what a server will execute, or
// refuses. Parse accepts a body only when every peer that follows the JSON
// and JSON-RPC specifications, lenient ones included, reads the same
// method, id, tool name, URI and arguments from it that Parse reports. What
// a lenient peer could read differently is refused with a *ParseError that
// names the rule and the JSON-RPC code to answer with: duplicate object
// names anywhere (both official SDKs let the last one win), names that
// differ only in case from one another anywhere, or from a JSON-RPC or MCP
// field name where that field belongs (encoding/json matches struct fields
// case-insensitively), a member named __proto__ (JavaScript servers can
// turn it into a prototype), escapes in a method, tool or prompt name and
// \u escapes in a URI (servers decode them before looking a tool up, so a
// naive comparison of the text would differ; a URI may carry the few that
// Go's encoding/json writes for &, < and >), names that are not in Unicode
// NFC, invalid UTF-8 (lone surrogate escapes included), a leading
// byte-order mark (the TypeScript SDK skips it), nesting and number
// lengths past Limits, ids a peer would echo back as other bytes, and
// anything that is not JSON-RPC 2.0 as MCP uses it. Policy reads arguments through Message.Arg, which resolves a
// JSON Pointer in the very bytes Parse checked, so policy and codec cannot
// read a message differently.
//
// Before Parse, the intake (content.go, lenient.go, methods.go) decides
// what is read at all: a body is MCP's only as UTF-8 JSON under a
// Content-Type no two readers read apart, and what agentg forwards after
// reading says application/json; a body that fails the strict reading is
// passed unread only where no lenient reader (any charset, escapes, case
// folding, forms) could take it for JSON-RPC; MCP's messages travel only
// as POST bodies, so on a governed server the guard refuses a body on
// another method and an HTTP upgrade (IsUpgrade names one).
//
// Parse does not copy: every jsontext.Value in a Message is a slice of the
// body it was given, which the caller must not modify while the Message is
// in use. Rewriting never re-encodes what it does not change: Filter,
// Redact, WithArgs and WithResult splice new bytes into the old ones, so a
// message agentg lets through unchanged reaches the peer byte for byte.
//
// The SSE framer (SSEReader, WriteEvent) follows the WHATWG event-stream
// format. It reads one event at a time with a bounded buffer, never a whole
// stream. No event is forwarded as it came: clients read event streams
// differently (the Go SDK trims names and ends lines at LF only), so every
// event is written anew, canonically, and JSON-RPC under any name but
// message is refused (sse_canon.go): a client finds a message only where
// agentg read one.
//
// The package imports no agentg package and decides nothing: it reads,
// frames and rewrites. The guard above it (dissect/mcp) asks the policy,
// and any door (the proxy, the gateway, a stdio wrap) may call it.
package wire
