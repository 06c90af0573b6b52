// Package child runs MCP servers that speak stdio: the processes agentg
// starts for the policy's `command:` servers (Supervisor, restarted with
// backoff, each with an environment of only what its entry lists plus
// proxy settings that carry its own identity), and the relay `agentg
// wrap` puts between an agent and the server it launches (Relay). Both
// read newline-delimited JSON-RPC (the stdio transport of every MCP
// revision) with Lines, bounded by mcp.max_message per line, and hand
// every message to the MCP guard's stream entry (mcp.Session): this
// package moves bytes and processes, it decides nothing.
package child
