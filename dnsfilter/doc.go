// Package dnsfilter is agentg's DNS server: the same host policy the
// proxy enforces, applied to name resolution. It answers on UDP and TCP
// (github.com/miekg/dns), decides every question with the policy in force
// (rules.Engine.Name, the port-less question; the agent by client address,
// rules.Engine.Agent, as the proxy does), forwards allowed questions to
// the policy's upstreams, caches the answers, checks them, remembers which
// addresses it handed out for which names (state.Bindings), and writes one
// audit event per query (kind "dns").
//
// The contract:
//   - Fail closed. A question that cannot be parsed, classified or
//     checked is refused with a reason: malformed packets get FORMERR (or
//     nothing when even the header is unreadable), a question outside
//     class IN or not a query is refused, an upstream that does not answer
//     in time is SERVFAIL (never a hang), and a client whose agent cannot
//     be named (an agent with a password: DNS carries none) is REFUSED.
//   - One decision per name, the proxy's: a denied name is answered per
//     dns.block (NXDOMAIN with an SOA, REFUSED, or a sinkhole address),
//     with an Extended DNS Error (RFC 8914; Blocked, or Filtered when the
//     answer was the problem) naming the rule, when the client speaks
//     EDNS. Report mode logs and resolves.
//   - Answers are checked for each agent, from the cache too, by an
//     explicit class for every record type (rrcheck.go): a CNAME or DNAME
//     chain that reaches a denied name is denied; a record carrying an
//     address the policy would not let the agent reach (A, AAAA, SVCB and
//     HTTPS hints, APL, L32, IPSECKEY and AMTRELAY gateways, a URI's host;
//     non-public ones unless a CIDR rule opens them: rebinding) is dropped,
//     and so is one naming a target the agent may not resolve (MX, SRV,
//     NS, PTR, SVCB/HTTPS TargetName, ...); a type no class covers is
//     dropped; records that answer a question not asked are dropped
//     before anything is cached.
//   - Bounded. One memory budget (dns.memory) covers the cache (bounded
//     in entries and in its share of bytes) and the bindings table (the
//     rest), both enforced by eviction and reported (Metrics); identical
//     questions in flight go upstream once, and the exfiltration guards
//     keep bounded state.
//   - The policy is read once per query from Config.Policy, so a reload
//     applies to the next query; upstreams are rebuilt when they change.
//
// The layout follows CoreDNS's forward plugin: server.go runs listeners and
// holds the per-policy state, handle.go is one query's path, respond.go
// builds answers, forward.go talks to upstreams, cache.go, check.go (with
// rrcheck.go) and guard.go are the cache, the answer checks and the exfiltration guards,
// hit.go is a cache hit's fast path (the decisions and the packed reply
// remembered per entry, agent and engine),
// resolver.go gives the proxy its lookups through the same cache, and
// metrics.go counts.
package dnsfilter
