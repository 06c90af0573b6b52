package rules

import "fmt"

// SelfAgent is the identity agentg's own calls are decided as when no
// agent asked for them (proxy.Server.Client: OAuth metadata and token
// endpoints, a token-exchange STS). The policy scopes rules to it like
// to any agent (agents: [agentg]); no client can claim it and no policy
// can define it, so no agent can take on what the policy allows agentg
// itself.
const SelfAgent = "agentg"

// errSelfAgent refuses a claim to SelfAgent.
var errSelfAgent = fmt.Errorf("agent name %s is reserved for agentg's own calls", SelfAgent)
