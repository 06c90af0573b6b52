package rules

// Warnings about the mcp section (see Engine.Warnings).

// mcpRefs warns about tool patterns (of tool rules, redact and
// rate_limits entries) that name a server no servers entry defines: no
// call is ever decided with that server name, so the entry never
// applies (a typo, or a server whose entry was removed).
func (w *warner) mcpRefs() {
	m := &w.e.mcp
	for _, r := range m.tools.order {
		if r.server == "" {
			continue
		}
		if _, ok := m.servers.defined[r.server]; !ok {
			w.add(r.where, "%s (%q) names mcp server %s, which mcp servers does not define: it never applies", r.what, r.text, r.server)
		}
	}
}
