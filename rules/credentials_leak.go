package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/creds"
)

// CredentialUse asks the credentials section whether a secret's value may
// go with one request: the leak guard's question (a value or a
// placeholder found in what an agent sent) and the placeholder swap's.
// Fields may be added.
type CredentialUse struct {
	Secret string
	Agent  string
	Host   addr.Host
	Scheme string // "http" or "https"
	Path   string // decoded
	// Server is the mcp servers entry the request is for when the door
	// knows it (the MCP gateway): server: bindings match by this name.
	// Empty: they match the entry mcp servers gives Host and Path.
	Server string
}

// Binds reports whether some binding that uses q.Secret matches the
// request, matched as injection matches (host, path, agents, https unless
// insecure_http): the requests its value is attached to are the only ones
// it may go with. It does not allocate.
func (c *Credentials) Binds(q CredentialUse) bool {
	if q.Host.IsIP() {
		return false
	}
	var srv serverAt
	if q.Server != "" {
		srv = serverAt{asked: true, ok: true, name: q.Server}
	}
	for i := range c.bindings {
		b := &c.bindings[i]
		if !usesSecret(b, q.Secret) {
			continue
		}
		if q.Scheme != "https" && !b.PlainHTTP {
			continue
		}
		if b.agents != nil && !slices.Contains(b.agents, q.Agent) {
			continue
		}
		if b.glob != nil && !b.glob.match(q.Path) {
			continue
		}
		if b.servers != nil {
			// As Match: a server: binding's value goes with that
			// server's requests.
			if srv.is(c.mcp, q.Host, q.Path, b.servers) {
				return true
			}
			continue
		}
		for _, pt := range b.hosts {
			if pt.covers(q.Host.Name) {
				return true
			}
		}
	}
	return false
}

// usesSecret reports whether b attaches secret (its own, or one its
// template names).
func usesSecret(b *Binding, secret string) bool {
	if b.Secret == secret {
		return true
	}
	for rest := b.Secrets; rest != ""; {
		var n string
		n, rest, _ = strings.Cut(rest, ",")
		if n == secret {
			return true
		}
	}
	return false
}

// shortWarning is agentg check's warning about an inline secret too short
// for the leak guard (agentg serve logs the same of one it reads).
func shortWarning(name string) string {
	return fmt.Sprintf("secret %s is shorter than %d bytes: it is injected, but the leak guard does not look for it (so short a value would be found in ordinary text everywhere)", name, creds.MinGuarded)
}
