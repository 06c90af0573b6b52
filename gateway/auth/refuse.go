package auth

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// RuleAuth is the rule id of every refusal at the gateway door for want
// of a valid credential; the event's reason names the check.
const RuleAuth = "builtin:gateway-auth"

// Refuse writes the refusal for err (a *Failure from Authenticate): 401
// (403 for a missing scope) with a WWW-Authenticate challenge as RFC 6750
// section 3 has it: the policy's realm, the error attribute when a
// credential was presented, scope when the policy's jwt requires scopes,
// and resource_metadata (RFC 9728) when the policy names it; and a JSON
// body with the same error. The description names the check only
// ("expired", "issuer", ...), not the details the event holds.
func (a *Authenticator) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	g := a.o.Policy.Engine().Gateway()
	var f *Failure
	if !errors.As(err, &f) {
		f = fail("", "malformed", "the credential could not be checked")
	}
	w.Header().Set("WWW-Authenticate", challenge(g, f))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(f.Status())
	code := f.errorCode()
	if code == "" {
		code = "unauthorized"
	}
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description(f)})
}

func challenge(g *rules.Gateway, f *Failure) string {
	var b strings.Builder
	// The realm and the URL are printable ASCII without quotes or
	// backslashes (rules checks them at load), the rest agentg's own
	// words: each goes into its quoted-string as it is.
	b.WriteString(`Bearer realm="` + g.Realm + `"`)
	if c := f.errorCode(); c != "" {
		b.WriteString(`, error="` + c + `", error_description="` + description(f) + `"`)
	}
	if g.JWT != nil && len(g.JWT.Scopes) > 0 {
		b.WriteString(`, scope="` + strings.Join(g.JWT.Scopes, " ") + `"`)
	}
	if g.ResourceMetadata != "" {
		b.WriteString(`, resource_metadata="` + g.ResourceMetadata + `"`)
	}
	return b.String()
}

// description is the 401's error_description: the method and the check,
// printable ASCII only (RFC 6750 section 3).
func description(f *Failure) string {
	if f.Method == "" {
		return f.Check
	}
	return f.Method + " " + f.Check
}

// Middleware authenticates every request before next sees it: a refused
// one gets Refuse's 401 (or 403) and one event (kind http, door gateway, rule
// RuleAuth, the reason naming the check); an accepted one reaches next
// with its Identity in the context (FromContext) and without its
// Authorization header.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id, err := a.Authenticate(r)
		if err != nil {
			a.Refuse(w, r, err)
			a.logRefusal(r, err, start)
			return
		}
		// The credential was for the gateway, not for anything behind
		// it: next never sees it, so no upstream can be handed it.
		r = r.WithContext(WithIdentity(r.Context(), id))
		if _, ok := r.Header["Authorization"]; ok {
			r.Header = r.Header.Clone()
			r.Header.Del("Authorization")
		}
		next.ServeHTTP(w, r)
	})
}

// Event is the one event of a refusal, for a door that calls
// Authenticate and Refuse itself.
func (a *Authenticator) Event(r *http.Request, err error) *audit.Event {
	g := a.o.Policy.Engine().Gateway()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	e := &audit.Event{Time: a.o.Now(), Kind: "http", Door: "gateway", Client: r.RemoteAddr, Method: r.Method,
		Scheme: scheme, Host: hostOnly(r.Host), Path: r.URL.Path, Decision: "deny", Rule: RuleAuth,
		RuleSource: g.Source, Reason: err.Error(), Status: http.StatusUnauthorized}
	var f *Failure
	if errors.As(err, &f) {
		e.Status = f.Status()
	}
	if a.o.Log != nil {
		e.ID = a.o.Log.NewID()
	}
	return e
}

func (a *Authenticator) logRefusal(r *http.Request, err error, start time.Time) {
	if a.o.Log == nil {
		return
	}
	e := a.Event(r, err)
	e.Duration = time.Since(start)
	a.o.Log.Log(e)
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}
