package rules

// AgentAt is the "who" step of every door (explicit, transparent, DNS):
// the agent the policy names for claim c (see Agent), or, when the policy
// names none, the client's source address itself, so that every client
// has a name its rules and events can use. A claim the policy refuses is
// the error Agent gives. It lives here, not in a door's package, so that
// the DNS filter and the proxy name an agent by the same code without
// importing each other.
func (e *Engine) AgentAt(c Claim) (string, error) {
	agent, err := e.Agent(c)
	if err != nil {
		return "", err
	}
	if agent == SelfAgent {
		return "", errSelfAgent
	}
	if agent == "" && c.Src.IsValid() {
		agent = c.Src.Unmap().String()
	}
	return agent, nil
}
