package rules

// AllRedactions are the redactions of every mcp redact entry, whatever
// tools, agents and scope (arguments, results) it covers, in policy
// order; the slice is shared and must not be modified. For text shown to
// a person rather than sent (the body of an HTTP request held for
// approval, package approval), where any pattern the policy names is one
// to hide.
func (m *MCPRules) AllRedactions() []Redaction { return m.redact.sets[scopeAll].items }
