// Package rules is agentg's policy: the policy model, its loaders (the YAML
// policy; plain, hosts and adblock list files), the compiled matchers, the
// decisions (each carrying the id of the rule that fired) and hot reload.
//
// The contract: everything is read, checked and compiled at load. A
// compiled Engine is immutable, safe for concurrent use, and does no I/O on
// the request path; a miss allocates nothing. A policy error is always
// fatal and names file:line; list files are messy in the wild, so a list
// line that is not a usable entry is skipped and counted in Stats. Hosts
// passed in must already be canonical (package addr), and list entries are
// canonicalised by addr at load, so both sides compare in one form.
//
// # Policy file
//
//	default: deny        # allow | deny; "deny" when absent
//	mode: enforce        # enforce | report; "enforce" when absent. In report
//	                     # mode every deny (rules, default, ports, built-ins)
//	                     # is logged with Report set but the traffic passes;
//	                     # a rule's or list's own mode overrides it.
//	ports: [80, 443, "8000-8099"]  # optional; any other port is denied, rule "ports"
//	agents:                        # Engine.Agent: every claim is proven
//	  - name: builder
//	    password: s3cret           # optional: Basic user "builder" must present it; plain text
//	                               # (agentg check warns) or the hash agentg passwd prints:
//	                               # "$argon2id$v=19$m=65536,t=3,p=4$SALT$HASH" or bcrypt "$2b$12$..."
//	                               # (quote it); a malformed hash is a load error (passwords.go)
//	    # password_file: /run/secrets/builder.pw  # instead of password: one line, a hash or plain,
//	                               # read at load and on reload, watched like the policy;
//	                               # owned by agentg's user or root, no access for others
//	    cidrs: [10.0.0.0/24]       # optional: the only sources builder may connect from;
//	                               # without a user, a source here is builder (unless it
//	                               # has a password, which must then be presented)
//	free_agent_names: false        # true: accept a Basic user the policy does not define
//	                               # (never an IP address); else refused when agents are defined
//	hosts:
//	  - allow: api.github.com      # exact
//	  - deny: "*.evil.example"     # strict subdomains, not the apex (quote: * starts a YAML alias)
//	    important: true            # deny only: no allow, however specific, overrides it
//	  - allow: .example.com        # the apex and every subdomain
//	    agents: [builder]          # the rule exists only for these agents
//	    ports: [443]               # the rule only matches these ports
//	    mode: report               # per-rule mode
//	    id: allow-example          # rule id; default "<policyfile>:<line>"
//	  - deny: [a.example, b.example]  # several patterns share the rule and its id
//	ips:                           # CIDRs or single IPs, same options as hosts
//	  - allow: 127.0.0.1/32
//	  - deny: 203.0.113.0/24
//	lists:
//	  - path: lists/ads.txt        # relative to the policy file's directory
//	    format: adblock            # plain | hosts | adblock (required)
//	    action: deny               # deny (default) | allow; adblock @@ lines always allow
//	    id-prefix: ads             # entry ids "<id-prefix>:<line>"; default "<path>:<line>"
//	    # agents, ports, mode, important as for rules
//	resolve:                       # static resolver table consulted before DNS
//	  upstream.test: [127.0.0.1]
//	intercept:                     # CONNECT tunnels whose TLS agentg terminates
//	  - api.github.com             # host patterns as for rules
//	  - host: .openai.com          # or a mapping, scoped like a rule
//	    agents: [builder]
//	    ports: [443]
//	# intercept: all               # or every tunnel (the scalar "all" only)
//	passthrough:                   # never intercepted, even under intercept: all
//	  - .pinned.example            # (certificate-pinned or mTLS hosts); same forms
//	  - host: .ech.example
//	    ech: allow                 # passthrough only: let ECH through (default refuse)
//	http:                          # rules for each HTTP request (plain and intercepted)
//	  - deny: "DELETE api.github.com/repos/**"
//	    id: no-repo-delete
//	  - allow: "GET,HEAD .example.com/public/*"
//	  - deny: "* .example.com/admin/**"
//	    agents: [builder]          # agents, ports, mode, important, id as for hosts
//	  - deny: ["PUT a.example/x", "PATCH a.example/x"]  # several values, one rule
//	mcp:                           # Model Context Protocol tool policy (mcp*.go)
//	  default: allow               # allow (default) | deny: calls no tool rule matches
//	  unknown_servers: allow       # allow (default) | deny | report: MCP no servers entry binds
//	  deny_as: error               # error (default) | result
//	  max_message: 4MiB            # bytes, or KiB/MiB/GiB; 1KiB to 1GiB
//	  pinning: alert               # alert (default) | deny
//	  unrequested: report          # report (default) | approve | deny: a tools/call no model turn asked for
//	  link_window: 10m             # how long a turn's tool calls may be matched (1s to 24h; default 10m)
//	  servers:                     # the only source of a server's policy name
//	    - name: jira               # letters, digits, '_', '-'; no dots
//	      url: mcp.atlassian.example/v1/**  # host pattern + optional path glob
//	      ports: [443]             # optional
//	    - name: files              # or a stdio server agentg starts (mcp_stdio.go)
//	      command: [npx, -y, server-files, /srv]   # instead of url
//	      dir: /srv                # optional working directory
//	      env: {LANG: C.UTF-8, TOKEN: {secret: files}}  # its whole environment (+ HTTPS_PROXY to agentg)
//	      egress: [api.files.example]  # the only hosts its own egress (agent server:files) may reach
//	      prefix: f                # served by the gateway over stdio too: prefix and timeout as below

//   - name: alpha              # served by the MCP gateway (--gateway; mcp_gateway.go):
//     endpoint: https://alpha.example/mcp  # the URL it connects to (url: then optional)
//     prefix: a                # catalogue names "a.TOOL"; default the name; "" for none
//     timeout: 5s              # per-server wait for a list or a session (default 5s)
//     tools:                       # "SERVER.TOOL" patterns, '*' any run
//   - deny: "jira.delete_*"    # agents, mode, important, id as for hosts
//   - deny: shell.run
//     when:                    # all must hold
//   - arg: /command        # JSON Pointer into the arguments
//     matches: 'rm\s+-rf'  # equals | glob | matches | exists
//   - annotation: destructiveHint
//     redact:                      # obligations: every matching entry applies
//   - pattern: "AKIA[0-9A-Z]{16}"
//     in: [arguments, results] # default both; tools, agents, id
//     rate_limits:
//   - tools: "github.search_*" # default every tool; agents, mode, id
//     limit: 30/m              # N/s, N/m, N/h; burst N unless burst: says
//     per: agent               # agent (default) | server | tool
//     dns:                           # the DNS filter (package dnsfilter); names are decided by Name
//     block: nxdomain              # nxdomain (default, with an SOA) | refused | sinkhole[:V4,V6]
//     block_ttl: 60s               # TTL of blocked answers
//     upstreams: [127.0.0.1:5300, "tls://dns.example@192.0.2.53:853"]  # default: the system's
//     timeout: 2s                  # per attempt at one upstream
//     log: all                     # all | blocked | none: which queries are events
//     cache: {max_entries: 100000, min_ttl: 0s, max_ttl: 1h, negative_ttl: 5m, serve_stale: 0s}
//     memory: 96MiB                # the cache (2/3) and the IP bindings (1/3); cache.max_size is its older name
//     limits:                      # exfiltration guards (DNSQuery; the counting ones in dnsfilter)
//     max_name_length: 180
//     max_label_length: 63
//     subdomains: 100/m          # distinct names per registered domain per agent; off
//     query_rate: 200/s          # per agent; off
//     refuse_types: [NULL, ANY, AXFR, IXFR]
//     pass_types: []               # answer types the checks cannot read, passed unread (else dropped)
//     deny_public_resolvers: false # true: deny the built-in DoH/DoT list (PublicResolvers)
//     deny_dot: false              # true: deny port 853 (DoT) for every host and address, builtin:dot-port
//     doh_resolvers: []            # hosts DoH exchanges may go to; any other is refused, builtin:doh
//     credentials:                   # secrets agentg attaches for agents (credentials*.go)
//     secrets:                     # exactly one source each
//     gh: {env: GITHUB_TOKEN}    # env | file | command (+ timeout) | insecure_inline | kms (a client_cert key)
//     client-key: {file: client.key}
//     bindings:                    # the first that matches a request is used
//   - id: gh
//     host: api.github.com     # host patterns; or server: NAME / servers: [..] of mcp servers
//     # bindings attach on the MCP gateway's upstream calls too, for the agent it proved
//     path: /repos/**          # optional; agents: optional
//     secret: gh
//     header: {name: Authorization, value: "Bearer {{secret}}"}  # or basic: {user: U}, query: NAME
//     client_cert: {cert: client.pem, key: client-key}  # mTLS, besides or instead of the above
//     insecure_http: false     # true: plain http too (not with client_cert)
//   - host: api.example.com    # exchange the agent's own Bearer token at an STS (RFC 8693,
//     token_exchange:          # credentials_exchange.go) and attach the issued one instead
//     token_url: https://sts.example.com/token  # https only; decided as agent "agentg"
//     client_id: agentg
//     client_secret: sts     # the name of a secret under credentials secrets
//     audience: api          # optional, as are resource, scopes, client_auth (basic | post),
//     # requested_token_type, subject_token_type, max_ttl (default 5m)
//   - id: jira                 # required with oauth: agentg oauth connect names it
//     host: mcp.jira.example
//     path: /mcp
//     oauth:                   # agentg is the server's OAuth client (credentials_oauth.go, creds/oauth)
//     grant: authorization_code  # default | client_credentials (needs client_id and client_secret or private_key)
//     client_id: agentg      # a pre-registered client; else a metadata document, else registration
//     client_secret: NAME    # a secret of credentials.secrets
//     private_key: NAME      # PEM, for private_key_jwt (RFC 7523)
//     client_metadata_url: https://agentg.example/client.json  # https with a path
//     scopes: [mcp:read]     # asked for beside the server's challenge
//     token_auth: auto       # client_secret_basic | client_secret_post | none | private_key_jwt
//     resource: https://mcp.jira.example/mcp  # to connect before any request
//     issuer: https://auth.jira.example       # the AS a pre-registered client belongs to
//     llm:                           # model API calls (llm.go; read by dissect/llm on the exchange path)
//     hosts:                       # the first entry covering a request binds it; its hosts are intercepted
//   - host: llm.internal.example  # host patterns; path: optional glob
//     dialects: [openai-chat]  # openai-chat | openai-responses | anthropic-messages | gemini; default all
//     provider: vllm           # the provider's name in events and metrics; default the host
//     default_hosts: true          # api.openai.com, api.anthropic.com, generativelanguage.googleapis.com;
//     # default true when hosts names none
//     unparsed: report             # deny | report (default) | allow: a request or answer that cannot be read
//     default: allow               # allow (default) | deny: models no rule matches, rule llm:default
//     models:                      # model globs ('*' any run, any case); most specific wins, deny on a tie
//   - deny: "gpt-4*"
//     provider: openai         # optional; agents, mode, important, id as for hosts
//     prices:                      # USD per million tokens; the most specific model glob wins
//   - {model: "gpt-4o*", input: 2.5, cached_input: 1.25, output: 10}  # cached_input, cache_write:
//     # default input; provider: optional
//     tool_use: off                # off (default) | report | enforce: each tool call in a model's answer
//     # decided by the mcp tool rules (SERVER.TOOL from the model's name)
//     quotas:                      # token and cost quotas (llm_quota.go); every entry covering a call applies
//   - id: coder-daily            # agents, mode, id as for rules; models: globs; provider: optional
//     tokens: 2000000/d          # input + output; input_tokens, output_tokens by kind
//     cost: 5/d                  # USD at llm prices per s|m|h|d
//     per: [agent, model]        # agent | model | [agent, model] (default) | all
//     tool_names:                  # model-facing tool names to SERVER.TOOL (llm_names.go); first match wins,
//     create_ticket: jira.create_issue  # then the conventions mcp__S__T, S_T, S__T, S.T, bare T
//     "atl_*": jira.*              # '*' in the target: what the name's '*' matched
//     gateway:                       # who an agent is at the MCP gateway door (gateway.go; checked by gateway/auth)
//     realm: agentg                # WWW-Authenticate realm
//     resource_metadata: https://gw.example/.well-known/oauth-protected-resource  # optional
//     tokens:                      # bearer tokens by SHA-256 digest (agentg gateway token)
//   - {agent: coder, sha256: 5e88489..., id: coder-laptop}
//     jwt:                         # the identity provider's JWTs, checked against its JWKS
//     issuer: https://idp.example
//     audience: [agentg-gateway] # required
//     jwks_url: https://idp.example/keys  # https (http to loopback only)
//     algorithms: [RS256, ES256] # default; asymmetric only, never none or HS*
//     leeway: 30s                # clock skew for exp, nbf, iat (0s to 5m)
//     claim: sub                 # names the agent, through agents: {VALUE: AGENT} if given
//     refetch: 30s               # an unknown kid refetches the JWKS at most this often
//     scopes: [mcp:tools]        # optional: the token must grant each (403 otherwise)
//     mtls:                        # client certificates chaining to ca
//     ca: clients-ca.pem         # CA certificates only; watched with the policy
//     name_from: cn              # cn | dns | uri | email; agents: {VALUE: AGENT} optional
//
// The agent name "agentg" (SelfAgent) is reserved: it is the identity of
// agentg's own calls (an STS, OAuth endpoints), which rules may scope with
// agents: [agentg]; no client may claim it and no policy may define it.
//
// Unknown or duplicate keys, bad patterns, bad CIDRs (including host bits
// set, "10.0.0.1/8"), bad http rules, bad mcp entries, duplicate rule ids
// (shared by hosts, ips, http and mcp) and `important` on an allow are
// load errors.
//
// # Patterns
//
// "example.com" matches that host only; "*.example.com" any subdomain but
// not the apex; ".example.com" the apex and every subdomain. Anything else
// ("*x.com", "a.*.com", "*", "**.x", IP literals, spaces) is an error. A
// list entry covers the domain and all its subdomains (in plain lists a
// leading "*." or "." is honoured as in a pattern).
//
// # Precedence
//
// Only rules that apply to the agent and the port are considered. For a
// name, the most specific matching rule wins: the longest matching suffix,
// and at the full host an exact rule beats ".name" and list entries; on a
// tie deny wins. A matching important deny beats any allow (among
// important denies the most specific wins). No match: the default, rule
// "default". The policy's ports list is checked before anything else.
//
// An IP literal is decided as an IP, never by host rules: CIDR rules by
// longest prefix (tie: deny; important as above). A non-public address
// (addr.Classify) is denied as "builtin:non-public:<class>" unless the
// deciding CIDR rule is an allow whose prefix is at least as long as the
// non-public range the address is in: "allow 0.0.0.0/0" does not open
// 10.0.0.0/8, "allow 10.0.0.0/8" and "allow 127.0.0.1/32" do. A public
// address no rule matches gets the default. Engine.IP applies the same
// test to each resolved address of an allowed name, but without the
// default: "no objection" is Allow with Rule "". A resolved IPv4-mapped
// address (::ffff:127.0.0.1) is checked, and dialled, as the IPv4
// address it maps; an IP literal written that way is decided as written
// (class ipv4-mapped), since that is what the client asked for.
//
// # Questions
//
// Engine.Host decides a destination with its port. Engine.Addresses then
// decides each resolved address of an allowed host (agentg's own
// listeners are always denied, "builtin:self") and returns the addresses
// that may be dialled; none at all is "builtin:no-addresses", which the
// proxy answers as unreachable. Engine.Name is the port-less question of
// a DNS filter (Engine.DNS().AnswerIP its question about an answer's
// address, Engine.DNS().Query its stateless exfiltration guards): could
// some connection to the name be allowed (the
// policy's ports never deny a name; a rule restricted to ports decides
// only at its ports). Engine.Agent proves who a connection is (Claim),
// Engine.Tunnel says whether to intercept a tunnel and whether ECH may
// pass, Engine.HTTP().Request decides one HTTP request. Questions that can grow
// are structs (Dest, Claim, Request). Engine.Warnings lists what a
// policy does that its author may not mean (agents anyone can claim,
// http rules that tunnels can carry requests past); agentg check prints
// them.
//
// The zero Decision is Undecided and never allowed: only an Allow, or a
// Deny in report mode, passes.
//
// # TLS interception
//
// Engine.Tunnel says whether to intercept a tunnel: a host an mcp
// servers entry names is always intercepted ("mcp:server <name>"), else a
// matching passthrough entry wins ("passthrough <file>:<line>", also when nothing
// would have intercepted the host), else the most specific matching
// intercept entry ("<file>:<line>"), else "intercept: all"
// ("intercept:all"), else no (""). IP literals match only "intercept:
// all". The string "all" as a list item is an error (it would be a host).
// Encrypted Client Hello hides the SNI the TLS gate must check, so
// TunnelPolicy.AllowECH is set only when the deciding entry is a
// passthrough entry with "ech: allow".
//
// # HTTP rules
//
// An http rule's value is "METHODS HOST[PATH]". METHODS is "*" or a
// comma-separated list of HTTP tokens ("GET,HEAD"), upper-cased at load
// and compared with the request's method without regard to case. HOST is
// a host pattern as above (no IP literals, no port: use ports:). PATH is
// optional (no PATH: every path) and is a glob that starts with '/':
// '*' matches any run within one segment ("/v1/*.json", "/a*b"), "**" must
// be a whole segment and matches any number of segments, none included:
// "/repos/**" matches "/repos", "/repos/" and "/repos/a/b"; "/a/**/b"
// matches "/a/b". "***", "a**", '?', '#', '%', "." and ".." segments and
// "//" are errors. Globs are matched against the decoded path (net/http's
// URL.Path) after cleaning: "." and ".." segments resolved, "//"
// collapsed, a trailing '/' kept, so "/public/../admin" is "/admin".
// Decoding and any other normalisation (%2F, backslashes) is the caller's.
//
// Engine.HTTP().Request decides every HTTP request agentg decides (plain
// http:// and inside intercepted tunnels). It considers the rules that
// apply to the agent and port, list the method and match host and path.
// The most specific wins: first by host as for host rules, then by path:
// twice the length of the glob's literal text before its first '*' (the
// '/' before a "**" segment not counted, so "/repos/**" ranks as
// "/repos"), plus one for a glob without '*' ("/repos" beats
// "/repos/**", "/repos/*" beats both); no path ranks lowest. On a tie
// deny wins; an important deny beats any allow. No candidate: Allow, rule
// "http:default" (Source: the policy file); the host rules are the
// caller's business (Engine.Host first). TRACE and TRACK are denied as
// "builtin:trace" unless an allow rule naming the method explicitly wins
// ("TRACE x.example/debug"): an allow with METHODS "*" never opens them,
// a deny with "*" still matches them. Report mode applies as elsewhere.
// Requests to IP literals have no http rules.
//
// A deny must not be stepped around by a spelling the server treats as
// the same path, and an allow must not widen: deny globs match without
// regard to case and each segment whole or with its ";..." parameters
// stripped; allow globs match the path as sent. Where stripping
// parameters changes the path's shape ("/public/..;/admin", which Tomcat
// reads as "/admin"), deny globs match either reading and allow globs
// must match both. The values of method override headers
// (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override) are decided
// as the method too, and the strictest answer wins; a value that is not
// a method token is denied as "builtin:method-override".
//
// # MCP
//
// Engine.MCP() is the compiled mcp section (MCPRules). Its Server binds
// a checked destination (host, port, path: the
// path matched as a deny glob is, regardless of case and ";..."
// parameters) to a server's policy name: the most specific servers
// entry, the first on a tie. Engine.Tunnel always intercepts a host a
// servers entry names ("mcp:server <name>"), and a passthrough entry
// covering one is a load error. MCPRules.Tool decides a ToolCall: among
// the tool rules that apply to the agent, whose pattern covers
// SERVER.TOOL (the server part exact, the tool part of a deny without
// regard to case) and whose conditions all hold, the most specific
// pattern wins (an exact name beats a glob, a longer literal prefix a
// shorter, more literal text breaks a tie; conditions add none); on a
// tie deny wins; an important deny beats every allow; no match is
// "mcp:default". An arg condition reads the arguments through the
// codec's ArgLookup and fails when its pointer names nothing (except
// "exists: false"); an annotation condition holds only when the server
// set the hint to true. Redactions and rate limits are obligations:
// every entry covering the call applies, whatever the verdict, matched
// as a deny matches. A redaction covers every message of its direction
// (arguments: client to server; results: server to client); a message
// not tied to one tool call gets every entry covering the agent
// (MessageRedactions). MCPRules embeds the section's settings, with the
// decisions for unknown servers and changed tool definitions built at
// load. Warnings names tool patterns for servers no entry defines.
//
// # Model calls
//
// Engine.LLM() is the compiled llm section (LLM). Host binds a request's
// host and path to a provider and its dialects (the first entry that
// covers it; the well-known providers' hosts when the policy names none,
// unless default_hosts: false); Engine.Tunnel intercepts every host an
// entry names ("llm:host"), after the mcp servers and before passthrough,
// so a model call is never inside TLS agentg does not read; a passthrough
// entry covering one is a load error. Model decides
// a ModelCall (agent, provider, model): among the models rules that apply
// to the agent, whose provider (if named) and model glob match, the most
// specific glob wins (an exact name beats a glob, a longer literal prefix
// a shorter), then one naming the provider; deny wins a tie; an important
// deny beats every allow; no match is the section's default
// ("llm:default"). Model globs match without regard to ASCII case, so a
// spelling cannot step around a deny. UnparsedDecision is the unparsed
// setting as a decision ("llm:unparsed"). Price is the prices entry for
// a model (the most specific glob, one naming the provider first) and
// Price.Cost what a turn's usage costs.
//
// ToolUse is the tool_use setting: off, report or enforce; the decisions
// are the mcp section's (MCPRules.Tool), asked by the proxy's tool-use
// guard for each tool call of a model's answer. LLMQuotas returns the
// llm quotas that cover an agent's call to a model (an obligation, like
// the quotas section's entries, sharing its buckets in the proxy): tokens
// (total, input, output) and cost in USD per period, keyed per agent and
// model unless per says otherwise. A cost quota with no prices in the
// section is a load error.
// Engine.ToolNames() maps the names a model sees for MCP tools to the
// mcp section's SERVER.TOOL (llm.tool_names, then the conventions):
// Names answers whether a model's tool call is a call of one tool (the
// MCP guard's link of a tools/call to its model turn), Resolve which
// tool a name is. MCPSettings.Unrequested is mcp.unrequested and
// mcp.link_window, with the decision ("mcp:unrequested") built at load.
//
// # Sections and explanations
//
// Each top-level key is one section, registered by the file that owns
// it in one table (sections.go: key, parse, compile steps); a new
// section is a new file. A section's compiled form is a view the Engine
// holds and returns (MCP, DNS, HTTP), with that section's questions as
// its methods. Engine.Explain, DNSRules.Explain and MCPRules.ExplainTool
// (ExplainPrompt, ExplainResource) answer a question with the steps the
// doors take, in their order (Host, StaticAddrs and Addresses,
// HTTPRules.Decide; Query then Name; Tool then ResultRedactions): the
// doors call the same steps, and agentg check prints these answers.
//
// # List formats
//
// plain: one domain per line, "#" comments. hosts: "0.0.0.0 a.example
// b.example", localhost-style names ignored. adblock (the DNS subset):
// "||a.example^" deny, "@@||a.example^" allow exception, "$important" the
// only modifier understood; lines with other modifiers, paths, cosmetic
// rules ("##") or anything else are skipped and counted. Lines longer than
// 4 KiB are skipped and counted; a policy file over 16 MiB is an error.
package rules
