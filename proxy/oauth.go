package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/creds/oauth"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// OAuth bindings on the exchange path (issue 16, OAuth for MCP servers).
// injectCredentials marks the flow of a request an oauth binding matches;
// serveExchange then sends it through oauthUpstream instead of the bare
// forwarder. oauthUpstream drops the agent's own Authorization, attaches
// the broker's access token, and reads the server's answer head before
// the agent sees it: a 401, or a 403 insufficient_scope, is agentg's to
// handle (the agent is not the OAuth client, and never sees the
// server's WWW-Authenticate). The broker renews the token where it can
// (refresh, client credentials) and the request is sent once more; where
// a person must connect the server, or agentg gave up, the agent's call
// is answered with a JSON-RPC error that names the server and what to
// do, and one event. A request is sent again at most once: no loop.

// maxReplay bounds the body kept to send a request again: MCP bodies are
// small and whole; a bigger one is sent once, unrepeatable.
const maxReplay = 1 << 20

// RuleOAuthRefused names the refusal of a call agentg has no token for.
const RuleOAuthRefused = "oauth:refused"

// withOAuth returns the handler that sends f's request upstream: up
// itself, or, when an oauth binding matched, up behind oauthUpstream.
func (s *Server) withOAuth(f *flow, up upstream) http.Handler {
	if f.oauth == nil {
		return up
	}
	return &oauthUpstream{s: s, f: f, up: up, b: f.oauth, bd: f.oauthCreds.OAuthBinding(f.oauth)}
}

type oauthUpstream struct {
	s  *Server
	f  *flow
	up upstream
	b  *rules.Binding
	bd oauth.Binding
}

func (o *oauthUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := o.f
	broker := o.s.cfg.OAuth
	defPort := uint16(80)
	if f.scheme == "https" {
		defPort = 443
	}
	server := &url.URL{Scheme: f.scheme, Host: authority(f.host, defPort), Path: r.URL.Path}
	if broker == nil {
		o.refuse(w, r, nil, server, oauth.Outcome{Reason: "this agentg runs no OAuth broker"})
		return
	}
	var body []byte
	replayable := true
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxReplay+1))
		if err != nil {
			f.setStatus(499, "reading the request body: "+err.Error())
			return
		}
		if len(b) > maxReplay {
			replayable = false
			r.Body = readCloser{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		} else {
			body = b
		}
	}
	// The agent's own credential toward this server is dropped, never
	// merged with agentg's.
	r.Header.Del("Authorization")
	tok, err := broker.Token(r.Context(), o.bd, server)
	if err != nil {
		o.refuse(w, r, body, server, oauth.Outcome{Reason: err.Error()})
		return
	}
	for attempt := 0; ; attempt++ {
		req := r
		if replayable {
			req = r.Clone(r.Context())
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			if body == nil {
				req.Body = http.NoBody
			}
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		} else {
			req.Header.Del("Authorization")
		}
		iw := &authIntercept{w: w}
		o.up.ServeHTTP(iw, req)
		if !iw.intercepted {
			if tok != "" && iw.status < 400 {
				broker.Succeeded(o.bd)
			}
			return
		}
		out := broker.Challenged(r.Context(), o.bd, iw.status, iw.h, tok, attempt > 0 || !replayable)
		if out.Retry && attempt == 0 && replayable {
			tok = out.Token
			continue
		}
		o.refuse(w, r, body, server, out)
		return
	}
}

// refuse answers the agent's call in JSON-RPC: an error with the
// request's id (HTTP 200, as a server answers a call it cannot serve),
// or, for what has no id, an HTTP 403 with the error. One event says so.
func (o *oauthUpstream) refuse(w http.ResponseWriter, r *http.Request, body []byte, server *url.URL, out oauth.Outcome) {
	f := o.f
	msg := "agentg: the MCP server " + server.String() + " (credential binding " + o.b.ID + ") "
	action := ""
	if out.Connect {
		action = "agentg oauth connect " + o.b.ID
		msg += "needs OAuth authorization that only a person can give: " + out.Reason +
			". Run `" + action + "` (or Connect in agentg's console), then retry the call"
	} else {
		msg += "could not be given an OAuth token: " + out.Reason
	}
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	status := http.StatusForbidden
	var id jsontext.Value
	if json.Unmarshal(body, &m) == nil && len(m.ID) > 0 && string(m.ID) != "null" {
		id, status = jsontext.Value(m.ID), http.StatusOK
	}
	data := map[string]any{"rule": RuleOAuthRefused, "binding": o.b.ID, "server": server.String()}
	if action != "" {
		data["connect"] = action
	}
	// The event first: whoever reads the answer can find it logged.
	f.setStatus(status, "oauth: "+out.Reason)
	if lg := o.s.cfg.Log; lg != nil {
		lg.Log(&audit.Event{ID: lg.NewID(), Parent: f.id, Time: time.Now(), Kind: "oauth", Agent: f.agent, Client: f.client,
			Method: r.Method, Scheme: f.scheme, Host: f.host.Name, Port: f.host.Port, Path: r.URL.Path,
			Decision: "deny", Rule: RuleOAuthRefused, Reason: msg, Status: status, Binding: o.b.ID, Credential: o.b.Secrets})
	}
	h := w.Header()
	h.Del("Www-Authenticate")
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write(wire.ErrorResponse(id, wire.CodeDenied, msg, data))
}

// authIntercept passes the server's answer through to the agent unless
// it is a 401, or a 403 insufficient_scope: those are held back (head and
// body) for oauthUpstream.
type authIntercept struct {
	w           http.ResponseWriter
	h           http.Header
	status      int
	intercepted bool
	wrote       bool
}

func (i *authIntercept) Header() http.Header {
	if i.wrote {
		return i.w.Header()
	}
	if i.h == nil {
		i.h = http.Header{}
	}
	return i.h
}

func (i *authIntercept) WriteHeader(code int) {
	if i.wrote || i.intercepted {
		return
	}
	if code == http.StatusUnauthorized || code == http.StatusForbidden && insufficientScope(i.h) {
		i.status, i.intercepted = code, true
		return
	}
	dst := i.w.Header()
	for k, v := range i.h {
		dst[k] = v
	}
	if code >= 200 {
		i.h, i.wrote, i.status = nil, true, code
	}
	i.w.WriteHeader(code)
}

func (i *authIntercept) Write(p []byte) (int, error) {
	if !i.wrote && !i.intercepted {
		i.WriteHeader(http.StatusOK)
	}
	if i.intercepted {
		return len(p), nil
	}
	return i.w.Write(p)
}

func (i *authIntercept) Flush() {
	if i.wrote {
		http.NewResponseController(i.w).Flush()
	}
}

func (i *authIntercept) Unwrap() http.ResponseWriter { return i.w }

func insufficientScope(h http.Header) bool {
	ch, err := oauth.ParseChallenge(h)
	return err == nil && ch.Error == "insufficient_scope"
}
