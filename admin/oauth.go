package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/agentg/agentg/creds/oauth"
)

// The OAuth endpoints (issue 16, OAuth for MCP servers): connecting an
// oauth binding, and the authorization callback.
//
//	GET  /v1/oauth                 {"items": [OAuthBinding...]}: the policy's oauth bindings and what agentg holds for each
//	POST /v1/oauth/connect         {"binding": "ID"} → 201 oauth.Connect, its authorization_url for a person to open
//	GET  /v1/oauth/connect/{id}    oauth.Connect: pending, completed, failed or expired
//	GET  /oauth/callback           the authorization server's redirect (no admin token: a browser brings it)
//
// The callback is the one path served without the admin token. What
// protects it is the state it must carry: 256 random bits the broker
// handed out with one authorization URL, spent on first use, expiring
// (creds/oauth). It answers a small page, never a token.

// CallbackPath is where the authorization server sends the browser back.
const CallbackPath = "/oauth/callback"

// OAuth is what the API asks of the OAuth broker; *oauth.Broker
// implements it.
type OAuth interface {
	StartConnect(ctx context.Context, b oauth.Binding) (oauth.Connect, error)
	ConnectStatus(id string) (oauth.Connect, bool)
	Callback(ctx context.Context, q url.Values) (string, error)
	Status(binding string) oauth.Status
}

var _ OAuth = (*oauth.Broker)(nil)

// OAuthBinding is one oauth binding as the API shows it.
type OAuthBinding struct {
	oauth.Status
	Grant  string `json:"grant"`
	Source string `json:"source"`
}

// CallbackURL is the redirect URI for the admin listener at addr: its
// loopback URL.
func CallbackURL(addr net.Addr) (string, error) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return "", fmt.Errorf("the admin API listens on %s %s: a browser cannot bring the authorization callback there; listen on a loopback TCP address", addr.Network(), addr)
	}
	host := ta.IP.String()
	switch {
	case ta.IP.IsUnspecified() || ta.IP.To4() != nil && ta.IP.IsLoopback():
		host = "127.0.0.1"
	case ta.IP.IsLoopback():
		host = "[::1]"
	default:
		return "", fmt.Errorf("the admin API listens on %s, not loopback: the authorization callback is only taken on a loopback URL", addr)
	}
	return "http://" + host + ":" + strconv.Itoa(ta.Port) + CallbackPath, nil
}

func (s *Server) oauthRoutes() {
	s.route("/v1/oauth", http.MethodGet, s.serveOAuthList)
	s.route("/v1/oauth/connect", http.MethodPost, s.serveOAuthConnect)
	s.mux.HandleFunc("GET /v1/oauth/connect/{id}", s.serveOAuthConnectStatus)
}

func (s *Server) oauthOff(w http.ResponseWriter) bool {
	if s.cfg.OAuth == nil {
		writeError(w, http.StatusServiceUnavailable, "oauth_off", "this agentg runs no OAuth broker")
		return true
	}
	return false
}

func (s *Server) serveOAuthList(w http.ResponseWriter, r *http.Request) {
	if s.oauthOff(w) {
		return
	}
	cr := s.cfg.Policy.Engine().Credentials()
	items := []OAuthBinding{}
	for _, b := range cr.Bindings() {
		if b.OAuth == nil {
			continue
		}
		items = append(items, OAuthBinding{Status: s.cfg.OAuth.Status(b.ID), Grant: b.OAuth.Grant.String(), Source: b.Source})
	}
	writeJSON(w, http.StatusOK, List[OAuthBinding]{Items: items})
}

func (s *Server) serveOAuthConnect(w http.ResponseWriter, r *http.Request) {
	if s.oauthOff(w) {
		return
	}
	var req struct {
		Binding string `json:"binding"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.Binding == "" {
		writeError(w, http.StatusBadRequest, "bad_request", `want {"binding": "ID"}`)
		return
	}
	cr := s.cfg.Policy.Engine().Credentials()
	b := cr.OAuthByID(req.Binding)
	if b == nil {
		writeError(w, http.StatusNotFound, "not_found", "the policy has no oauth binding "+strconv.Quote(req.Binding))
		return
	}
	c, err := s.cfg.OAuth.StartConnect(r.Context(), cr.OAuthBinding(b))
	if err != nil {
		writeError(w, http.StatusBadGateway, "connect_failed", "connecting "+req.Binding+": "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) serveOAuthConnectStatus(w http.ResponseWriter, r *http.Request) {
	if s.oauthOff(w) {
		return
	}
	c, ok := s.cfg.OAuth.ConnectStatus(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no connect attempt "+strconv.Quote(r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// serveOAuthCallback takes the authorization response. It is reached
// without the admin token (ServeHTTP).
func (s *Server) serveOAuthCallback(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		h.Set("Allow", http.MethodGet)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if s.cfg.OAuth == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, page("agentg runs no OAuth broker."))
		return
	}
	binding, err := s.cfg.OAuth.Callback(r.Context(), r.URL.Query())
	if errors.Is(err, oauth.ErrState) && binding == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, page("This authorization response is not one agentg is waiting for (unknown, used or expired state). Start again with agentg oauth connect."))
		return
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, page("Connecting "+binding+" failed: "+err.Error()))
		return
	}
	io.WriteString(w, page("agentg is connected: binding "+binding+" has its token. You may close this page."))
}

func page(text string) string {
	return "<!doctype html><meta charset=utf-8><title>agentg</title><p>" + html.EscapeString(text) + "</p>\n"
}

// OAuthBindings lists the policy's oauth bindings (GET /v1/oauth).
func (c *Client) OAuthBindings(ctx context.Context) ([]OAuthBinding, error) {
	var out List[OAuthBinding]
	err := c.call(ctx, http.MethodGet, "/v1/oauth", nil, &out)
	return out.Items, err
}

// OAuthConnect starts connecting a binding (POST /v1/oauth/connect).
func (c *Client) OAuthConnect(ctx context.Context, binding string) (oauth.Connect, error) {
	var out oauth.Connect
	err := c.call(ctx, http.MethodPost, "/v1/oauth/connect", map[string]string{"binding": binding}, &out)
	return out, err
}

// OAuthConnectStatus reads a connect attempt (GET /v1/oauth/connect/{id}).
func (c *Client) OAuthConnectStatus(ctx context.Context, id string) (oauth.Connect, error) {
	var out oauth.Connect
	err := c.call(ctx, http.MethodGet, "/v1/oauth/connect/"+url.PathEscape(id), nil, &out)
	return out, err
}
