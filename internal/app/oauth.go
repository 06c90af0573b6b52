package app

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/creds/oauth"
)

// The OAuth broker (creds/oauth) lives as long as the App: tokens
// survive policy reloads.
//
// Integration points, each left at its simplest on purpose:
//   - HTTP: a plain client that uses no proxy. The checked outbound
//     client of package proxy replaces it (BrokerConfig.HTTP).
//   - Store: in memory. The encrypted store of creds/vault replaces it
//     (BrokerConfig.Store: anything with Get/Put/Delete).
//   - OnValue/OnForget: wired to nothing; the leak guard subscribes there
//     to learn every token value the broker holds.
func newOAuthBroker(log *audit.Logger, adm func() *adminPlane) (*oauth.Broker, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // agentg's own requests never go through a proxy of the environment
	return oauth.NewBroker(oauth.BrokerConfig{
		HTTP:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
		Store:  oauth.NewMemoryStore(),
		Events: func(e oauth.Event) { log.Log(oauthEvent(log, e)) },
		RedirectURI: func() (string, error) {
			p := adm()
			if p == nil || p.ln == nil {
				return "", errors.New("the admin API is off (--admin off): the authorization callback has nowhere to land")
			}
			return admin.CallbackURL(p.ln.Addr())
		},
	})
}

// oauthEvent is the broker's event as the audit log records it: kind
// oauth, the action as its rule, the binding; never a value.
func oauthEvent(log *audit.Logger, e oauth.Event) *audit.Event {
	ev := &audit.Event{ID: log.NewID(), Time: time.Now(), Kind: "oauth", Decision: "allow", Rule: "oauth:" + e.Action,
		Reason: e.Reason, Binding: e.Binding, Credential: "oauth:" + e.Binding}
	if e.Failed {
		ev.Decision = "deny"
	}
	if e.Server != "" {
		if h, p, ok := hostPort(e.Server); ok {
			ev.Host, ev.Port = h, p
		}
		if u, err := url.Parse(e.Server); err == nil {
			ev.Path = u.Path
		}
	}
	return ev
}

func hostPort(raw string) (string, uint16, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", 0, false
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, false
		}
	}
	return u.Hostname(), uint16(port), true
}
