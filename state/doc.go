// Package state is agentg's runtime state that is read far more than it
// is written: the MCP guard's sessions and the JSON-RPC requests in
// flight in them, tool-definition pins, the tools' listed hints and
// parameter declarations, links between requests, and the inventory of
// servers and tools seen; and the DNS filter's IP→name bindings.
//
// Store is the contract the guard (dissect/mcp) programs against; Memory,
// built on github.com/hashicorp/go-memdb, is the implementation for one
// process. Memory composes one table per job on one memdb (sessionTable:
// sessions and in-flight requests; pinTable and its file; inventoryTable;
// linkTable; toolTable: hints and params) and answers Store through them.
// A store shared by several replicas implements the same interface; only
// Session.Stream (a handle to an open stream in this process) cannot be
// shared, which is fine because a legacy HTTP+SSE session lives on the
// replica that holds its GET stream.
//
// Contract:
//   - Identity comes from the policy. Every key starts with the server's
//     policy binding name, never with serverInfo.name (which the server
//     controls and which is recorded as reported, nothing more). Tool
//     names are kept byte for byte; keys are length-prefixed, so no name,
//     however hostile (dots, NUL, empty), can collide with another.
//   - JSON-RPC ids are their exact raw bytes: `1` and `"1"` are different
//     requests.
//   - Everything is bounded: in-flight requests per session
//     (Options.MaxInFlightPerSession) and by age (Options.RequestTTL),
//     sessions (count and idle time), servers, tools per server, URLs and
//     revisions per server. Past a bound the store refuses (ErrFull, or
//     PinUnchecked) rather than grow or forget silently; the guard refuses
//     what it cannot record.
//   - Reads take no lock: memdb reads run on an immutable snapshot. Writes
//     serialise on memdb's one writer lock, so the request path writes at
//     most once when a request begins and once when it ends; last-seen
//     times and call counts are atomics inside the records, not writes.
//   - Pins persist in <data-dir>/mcp-pins.json (PinsFile), written
//     atomically (temporary file, fsync, rename; mode 0600) whenever a pin
//     is created, changes or is accepted, before CheckPin or AcceptPin
//     returns. The file is also written by `agentg mcp pins accept`
//     (AcceptPinFile); both writers hold an advisory lock on
//     <data-dir>/.mcp-pins.lock for their read-modify-write, and the store
//     merges an external change before it writes, so neither loses the
//     other's update. Reload picks an external change up.
//   - A pins file that cannot be read or parsed is an error (NewMemory,
//     Reload), never an empty pin set: forgetting pins would re-trust every
//     changed tool.
//   - Links (links.go) remember what a later request refers back to: the
//     tool whose task a tasks/result fetches, the call an input_required
//     retry repeats. They are bounded (Options.MaxLinks) and expire
//     (Options.LinkTTL); past the bound PutLink refuses, and the guard
//     treats the later request as unlinked (a task's result then gets
//     every result redaction).
//   - The inventory is written to <data-dir>/mcp-inventory.json
//     (InventoryFile) periodically and on Close, atomically; it is a report,
//     so a damaged one is replaced, not fatal.
//
// Bindings (bindings.go) is the DNS filter's IP→name table: which names
// it handed out to which agent at which address, for the answer's TTL
// plus a floor. It is its own sharded map, not memdb (it is written on
// every uncached answer), bounded in bytes by the DNS filter's memory
// budget (dns.memory), written only by the filter and read by the
// transparent listener.
//
// Rate-limit and quota buckets do not live here (see package limit): they
// change on every call and would serialise all calls on the writer lock.
// Held calls and grants live with their broker (package approval).
package state
