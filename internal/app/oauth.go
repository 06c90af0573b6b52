package app

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/creds/oauth"
)

// The OAuth broker (creds/oauth) lives as long as the App: tokens
// survive policy reloads. It is wired to:
//   - HTTP: the proxy's checked client (proxy.Server.Client), so its
//     metadata, registration and token requests are decided by the host
//     rules as agentg's own (agent "agentg") and dial only checked
//     addresses. The broker is made before the proxy (which takes it),
//     so the client is reached through the App at each request.
//   - Store: the vault (tokens encrypted at rest in the data directory),
//     or memory when there is no data directory.
//   - OnValue/OnForget: the leak guard's held values. A token is agentg's
//     to attach and the agent never had it: it may send it nowhere.
func (a *App) newOAuthBroker() (*oauth.Broker, error) {
	var store oauth.TokenStore // nil: the broker's MemoryStore
	if a.vault != nil {
		store = a.vault
	}
	return oauth.NewBroker(oauth.BrokerConfig{
		HTTP: &http.Client{Transport: ownTransport{a}, Timeout: 30 * time.Second,
			// Every hop is decided again by the proxy's client.
			CheckRedirect: func(_ *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return fmt.Errorf("agentg: stopped after %d redirects", len(via))
				}
				return nil
			}},
		Store:    store,
		OnValue:  func(name, value string) { a.hold(heldName(name), value) },
		OnForget: func(name string) { a.held.Drop(heldName(name)) },
		Events:   func(e oauth.Event) { a.log.Log(oauthEvent(a.log, e)) },
		RedirectURI: func() (string, error) {
			p := a.adm
			if p == nil || p.ln == nil {
				return "", errors.New("the admin API is off (--admin off): the authorization callback has nowhere to land")
			}
			return admin.CallbackURL(p.ln.Addr())
		},
	})
}

// ownTransport sends through the proxy's checked client, once the proxy
// exists.
type ownTransport struct{ a *App }

func (t ownTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.a.srv == nil {
		return nil, errors.New("agentg: the proxy has not started")
	}
	return t.a.srv.Client().Transport.RoundTrip(r)
}

// heldName is a broker's value name (oauth:BINDING:access) as a held
// value's.
func heldName(name string) string { return creds.HeldName(name) }

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
