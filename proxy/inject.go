package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/rules"
)

// Credential injection (issue 16, first slice). serveExchange calls
// injectCredentials once decideExchange has allowed the request (host,
// authority, HTTP rules, quotas, approvals), just before forwarding: only
// requests agentg terminates reach the exchange path, and the forwarder
// sends them to the checked destination only (forward.go), so a secret
// goes nowhere a check did not allow. Whatever the agent sent in what a
// binding sets is replaced, never merged. The event names the binding
// and the secret; the value is only ever in the outgoing request.

// injectCredentials attaches the first matching binding's secret to r.
// A secret that cannot be read refuses the request (502): it is never
// sent without it. The refusal's text, which the agent reads, names the
// secret; the event's error also says why it could not be read.
func (s *Server) injectCredentials(eng *rules.Engine, f *flow, r *http.Request) (ref *refusal, why string) {
	cr := eng.Credentials()
	if !cr.Defined() {
		return nil, ""
	}
	b := cr.MatchServer(f.agent, f.toServer, f.host, f.scheme, r.URL.Path) // toServer "": Match
	if b == nil {
		return nil, ""
	}
	f.mu.Lock()
	f.binding, f.credential = b.ID, b.Secrets
	f.mu.Unlock()
	f.clientCert = b.Cert // presented by the forwarder (forward.go); nil: none
	if b.Kind == rules.InjectOAuth {
		f.oauth, f.oauthCreds = b, cr // the token is attached by oauthUpstream (oauth.go)
		return nil, ""
	}
	store := cr.Store()
	var err error
	switch b.Kind {
	case rules.InjectHeader:
		var v string
		v, err = b.Template.Expand(func(name string) (creds.Secret, error) {
			if name == "" {
				name = b.Secret
			}
			return store.Get(r.Context(), name)
		})
		if err == nil {
			r.Header[b.Header] = []string{v}
		}
	case rules.InjectExchange:
		return s.exchangeToken(f, b, r, store) // exchange_token.go
	case rules.InjectBasic, rules.InjectQuery:
		var sec creds.Secret
		if sec, err = store.Get(r.Context(), b.Secret); err != nil {
			break
		}
		if b.Kind == rules.InjectBasic {
			r.Header.Del("Authorization")
			r.SetBasicAuth(b.User, sec.Reveal())
		} else {
			r.URL.RawQuery = setQuery(r.URL.RawQuery, b.Query, sec.Reveal())
		}
	}
	if err != nil {
		return &refusal{status: http.StatusBadGateway,
			text: "agentg: the credential " + b.Secrets + " that binding " + b.ID + " attaches could not be read; the request was not sent"}, err.Error()
	}
	return nil, ""
}

// setQuery returns raw with every name parameter removed and name=value
// appended: an agent's own value is replaced, not sent beside it.
func setQuery(raw, name, value string) string {
	var b strings.Builder
	b.Grow(len(raw) + len(name) + len(value) + 2)
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name || k == name {
			continue
		}
		if kv == "" {
			continue
		}
		b.WriteString(kv)
		b.WriteByte('&')
	}
	b.WriteString(url.QueryEscape(name))
	b.WriteByte('=')
	b.WriteString(url.QueryEscape(value))
	return b.String()
}
