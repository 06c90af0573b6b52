// Package auth proves who an agent is at the MCP gateway door: a bearer
// token (by its SHA-256 digest in the policy), a JWT from the
// organisation's identity provider (checked against its JWKS), or a TLS
// client certificate (chaining to the policy's client CA). What the
// policy accepts is its gateway section (rules/gateway.go); this package
// does the checks, which need I/O (the JWKS) and per-connection state
// that rules must not hold.
//
// How the door uses it:
//
//	a, err := auth.New(auth.Options{Policy: live, Client: srv.Client(), Log: log})
//	handler := a.Middleware(gatewayHandler) // 401 + one event on failure
//	// inside gatewayHandler:
//	id, _ := auth.FromContext(r.Context()) // id.Agent is the proven name
//
// or, without the middleware:
//
//	id, err := a.Authenticate(r)
//	if err != nil {
//		a.Refuse(w, r, err) // writes the 401; the caller logs its one event (Failure fields)
//		return
//	}
//
// A door serving TLS calls ConfigureTLS on its tls.Config, so that clients
// are asked for a certificate: the handshake does not verify it (a bad
// certificate is then a 401 with an event, not a handshake alert nobody
// records); Authenticate does, against the CA in force.
//
// The contract:
//   - Fail closed. A request is an agent only when a credential the
//     policy accepts proves it. No credential, a malformed one, a
//     credential that fails any check, two credentials naming different
//     agents, a policy without a gateway section: all are a *Failure, and
//     the door answers 401 with WWW-Authenticate (RFC 6750: realm, and
//     error="invalid_token" or "invalid_request" when a credential was
//     presented; resource_metadata when the policy names it, for MCP
//     2025-06-18 and later). Nothing reaches an upstream.
//   - A presented credential that fails is a failure even when another
//     one succeeds: a client certificate from a foreign CA is not ignored
//     because a good bearer token came with it.
//   - Secrets are never shown: a Failure's text, the event and the 401
//     name which check failed (the kid, the issuer, the claim's value, a
//     token's id) and never a token or a part of one.
//   - The request path stays cheap: a bearer token is one SHA-256 and a
//     constant-time compare per configured digest; a verified JWT is
//     remembered by its digest for a minute at most (never past its exp,
//     and only under the policy that verified it), so an agent's next
//     requests cost a SHA-256, not a signature; the JWKS is read without
//     a lock and fetched only when a kid is unknown (at most once per the
//     policy's refetch interval, concurrent askers waiting for the one
//     fetch) or the set is an hour old (one request refreshes it, the
//     others go on with it); a verified client certificate is remembered
//     the same way, so a connection's chain is verified once.
//   - The credential is the gateway's alone: the Middleware hands next a
//     request without its Authorization header, so nothing behind the
//     door (an upstream session) can pass it on.
//   - The JWKS is fetched through the *http.Client the caller gives:
//     agentg's own checked client, so that the identity provider is
//     reached under the same host rules and checks as everything else.
//   - The policy in force is read per request (Options.Policy): a reload
//     changes tokens, issuer, audience and CA at once.
package auth
