package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Client identification, in the order the specification prefers: a
// pre-registered client (the policy's client_id), a client ID metadata
// document where the authorization server supports them, dynamic client
// registration (RFC 7591) as the fallback. A registered client belongs
// to the issuer that registered it and is never shown to another.

// client is how agentg identifies itself to one authorization server.
type client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret,omitempty"` // a registered client's; a pre-registered one's is read from the policy
	Auth   string `json:"auth"`                    // token endpoint auth method
	Issuer string `json:"issuer"`
	How    string `json:"how"` // "pre-registered", "metadata-document", "registered"
}

// chooseAuth picks the token endpoint auth method: want when the policy
// names one (and the server does not rule it out), else the strongest
// the binding can do that the server supports. RFC 8414's default, when
// the server lists none, is client_secret_basic.
func chooseAuth(want string, supported []string, hasSecret, hasKey bool) (string, error) {
	if want != "" && want != AuthAuto {
		if len(supported) > 0 && !slices.Contains(supported, want) {
			return "", fmt.Errorf("token_auth %s is not among the authorization server's token_endpoint_auth_methods_supported %v", want, supported)
		}
		return want, nil
	}
	var cands []string
	switch {
	case hasKey:
		cands = []string{AuthJWT}
	case hasSecret:
		cands = []string{AuthBasic, AuthPost}
	default:
		cands = []string{AuthNone}
	}
	if len(supported) == 0 {
		if hasKey || !hasSecret {
			return cands[0], nil
		}
		return AuthBasic, nil
	}
	for _, c := range cands {
		if slices.Contains(supported, c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("the authorization server supports token endpoint auth %v, and this binding can do %v", supported, cands)
}

// registration is what agentg asks an authorization server to register.
type registration struct {
	oauthex.ClientRegistrationMetadata
}

type registered struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	AuthMethod   string `json:"token_endpoint_auth_method"`
}

// register performs dynamic client registration at asm's endpoint.
func register(ctx context.Context, c *http.Client, asm *oauthex.AuthServerMeta, redirectURI string) (client, error) {
	if err := checkEndpoint(asm.RegistrationEndpoint); err != nil {
		return client{}, fmt.Errorf("registration endpoint: %w", err)
	}
	method := AuthBasic
	if sup := asm.TokenEndpointAuthMethodsSupported; len(sup) > 0 {
		method = ""
		for _, m := range []string{AuthBasic, AuthPost, AuthNone} {
			if slices.Contains(sup, m) {
				method = m
				break
			}
		}
		if method == "" {
			return client{}, fmt.Errorf("the authorization server %s supports token endpoint auth %v, none of which a registered client can do", asm.Issuer, sup)
		}
	}
	meta := oauthex.ClientRegistrationMetadata{
		RedirectURIs: []string{redirectURI}, ClientName: "agentg",
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: method,
		// A client on the person's machine whose redirect is a
		// loopback URL (the specification's "native").
		ApplicationType: "native",
	}
	body, err := json.Marshal(meta)
	if err != nil {
		return client{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, asm.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return client{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return client{}, fmt.Errorf("register at %s: %w", asm.RegistrationEndpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata))
	if err != nil {
		return client{}, fmt.Errorf("register at %s: %w", asm.RegistrationEndpoint, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
		}
		_ = json.Unmarshal(b, &e)
		return client{}, fmt.Errorf("register at %s: HTTP %d %s %s", asm.RegistrationEndpoint, resp.StatusCode, printable(e.Error), printable(e.Desc))
	}
	var r registered
	if err := json.Unmarshal(b, &r); err != nil {
		return client{}, fmt.Errorf("register at %s: the answer is not JSON: %w", asm.RegistrationEndpoint, err)
	}
	if r.ClientID == "" {
		return client{}, errors.New("register at " + asm.RegistrationEndpoint + ": the answer has no client_id")
	}
	cl := client{ID: r.ClientID, Secret: r.ClientSecret, Auth: method, Issuer: asm.Issuer, How: "registered"}
	if r.AuthMethod != "" {
		cl.Auth = r.AuthMethod
	}
	if cl.Secret == "" && cl.Auth != AuthNone && cl.Auth != AuthJWT {
		cl.Auth = AuthNone
	}
	return cl, nil
}

// printable cuts s to a short line of printable ASCII: what a server
// says goes into errors, and errors into events.
func printable(s string) string {
	b := make([]byte, 0, min(len(s), 200))
	for i := 0; i < len(s) && len(b) < 200; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}
