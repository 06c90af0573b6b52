// Package oauth is agentg's OAuth client for MCP servers that require
// OAuth (the MCP authorization specification, revisions 2025-11-25 and
// 2026-07-28): agentg, not the agent, discovers the server's
// authorization server, identifies itself to it, obtains tokens, keeps
// them fresh and attaches the access token to the agent's requests.
//
// Contract:
//
//   - A Broker lives as long as the agentg process, not a policy load:
//     tokens survive reloads. Its state is keyed by binding id and
//     resource; a binding whose oauth settings change starts over.
//   - Every HTTP request the broker makes (metadata, registration, token
//     endpoint) goes through the *http.Client it was given: agentg's
//     checked outbound client in production.
//   - Token values never reach an event, a log line or an error: errors
//     name the binding, the endpoint and the OAuth error code. Every
//     value the broker holds (access and refresh tokens, registered
//     client secrets) is reported to Config.OnValue when it is learnt and
//     to Config.OnForget when it is dropped, so that the leak guard knows
//     it.
//   - Tokens are kept in a TokenStore (MemoryStore by default; the
//     encrypted store of creds/vault in production).
//   - A person connects an authorization-code binding once: StartConnect
//     returns the authorization URL (PKCE S256, resource indicator, scope
//     selection, a single-use expiring state), Callback finishes it
//     (state, then iss per RFC 9207, then the code exchange).
//   - What cannot be discovered, validated or obtained is an error: the
//     caller refuses the request, never sends it without a token.
package oauth
