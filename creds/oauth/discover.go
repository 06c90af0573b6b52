package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Discovery, as the MCP authorization specification orders it: the
// protected resource metadata (RFC 9728) from the challenge's
// resource_metadata, else the path-inserted then the root well-known
// URI; then the authorization server metadata (RFC 8414, OpenID Connect
// Discovery) at the well-known URIs in the specification's order, whose
// issuer must be the one the URL was built from, byte for byte.

// maxMetadata bounds a metadata document.
const maxMetadata = 1 << 20

// Challenge is what a 401 or 403 said in its Bearer WWW-Authenticate.
type Challenge struct {
	ResourceMetadata string
	Scope            []string
	Error            string // "insufficient_scope", "invalid_token", ...
}

// ParseChallenge reads the Bearer challenge of a WWW-Authenticate; an
// answer without one gives a zero Challenge. A header that does not
// parse is an error: the caller refuses rather than guesses.
func ParseChallenge(h http.Header) (Challenge, error) {
	vals := h.Values("Www-Authenticate")
	if len(vals) == 0 {
		return Challenge{}, nil
	}
	chs, err := oauthex.ParseWWWAuthenticate(vals)
	if err != nil {
		return Challenge{}, fmt.Errorf("parse WWW-Authenticate: %w", err)
	}
	for _, c := range chs {
		if c.Scheme != "bearer" {
			continue
		}
		return Challenge{ResourceMetadata: c.Params["resource_metadata"], Scope: strings.Fields(c.Params["scope"]),
			Error: c.Params["error"]}, nil
	}
	return Challenge{}, nil
}

// prmURLs are the URLs to try for the protected resource metadata of
// the server at serverURL, in order.
func prmURLs(serverURL *url.URL, ch Challenge) []string {
	if ch.ResourceMetadata != "" {
		return []string{ch.ResourceMetadata}
	}
	origin := serverURL.Scheme + "://" + serverURL.Host
	var out []string
	if p := strings.TrimSuffix(serverURL.EscapedPath(), "/"); p != "" {
		out = append(out, origin+"/.well-known/oauth-protected-resource"+p)
	}
	return append(out, origin+"/.well-known/oauth-protected-resource")
}

// asMetadataURLs are the URLs to try for the metadata of issuer, in the
// specification's order.
func asMetadataURLs(issuer *url.URL) []string {
	origin := issuer.Scheme + "://" + issuer.Host
	p := strings.TrimSuffix(issuer.EscapedPath(), "/")
	if p == "" {
		return []string{origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"}
	}
	return []string{origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration"}
}

// errNotFound is a metadata URL answering 4xx: the next one is tried.
var errNotFound = errors.New("not found")

// getJSON fetches one metadata document.
func getJSON(ctx context.Context, c *http.Client, u string, v any) error {
	if err := checkEndpoint(u); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("GET %s: HTTP %d: %w", u, resp.StatusCode, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return fmt.Errorf("GET %s: content type %q, want application/json", u, mt)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > maxMetadata {
		return fmt.Errorf("GET %s: metadata larger than %d bytes", u, maxMetadata)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// checkEndpoint refuses a URL the broker would send anything to unless
// it is https, or http on a loopback name (development and tests).
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("bad URL %q", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" {
			return nil
		}
	}
	return fmt.Errorf("URL %q is neither https nor http on loopback", raw)
}

// discoverResource fetches the protected resource metadata of the
// server at serverURL and checks that it describes that server.
func discoverResource(ctx context.Context, c *http.Client, serverURL *url.URL, ch Challenge) (*oauthex.ProtectedResourceMetadata, error) {
	var errs []error
	for _, u := range prmURLs(serverURL, ch) {
		var prm oauthex.ProtectedResourceMetadata
		err := getJSON(ctx, c, u, &prm)
		if errors.Is(err, errNotFound) {
			errs = append(errs, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("protected resource metadata: %w", err)
		}
		if !resourceCovers(prm.Resource, serverURL) {
			return nil, fmt.Errorf("protected resource metadata at %s names resource %q, not the server %s: refused", u, prm.Resource, serverURL)
		}
		if len(prm.AuthorizationServers) == 0 {
			return nil, fmt.Errorf("protected resource metadata at %s names no authorization server", u)
		}
		return &prm, nil
	}
	return nil, fmt.Errorf("protected resource metadata: none found: %w", errors.Join(errs...))
}

// resourceCovers reports whether resource identifies the server at u:
// the same scheme and authority, and a path that is u's or a parent of
// it at a segment boundary.
func resourceCovers(resource string, u *url.URL) bool {
	r, err := url.Parse(resource)
	if err != nil || r.Fragment != "" || !strings.EqualFold(r.Scheme, u.Scheme) || !strings.EqualFold(r.Host, u.Host) {
		return false
	}
	rp := strings.TrimSuffix(r.EscapedPath(), "/")
	up := strings.TrimSuffix(u.EscapedPath(), "/")
	return rp == "" || rp == up || strings.HasPrefix(up, rp+"/")
}

// discoverIssuer fetches the authorization server metadata of issuer.
// needPKCE refuses a server that does not advertise S256.
func discoverIssuer(ctx context.Context, c *http.Client, issuer string, needPKCE bool) (*oauthex.AuthServerMeta, error) {
	iu, err := url.Parse(issuer)
	if err != nil || !iu.IsAbs() || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("bad issuer %q", issuer)
	}
	var errs []error
	for _, u := range asMetadataURLs(iu) {
		var asm oauthex.AuthServerMeta
		err := getJSON(ctx, c, u, &asm)
		if errors.Is(err, errNotFound) {
			errs = append(errs, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("authorization server metadata: %w", err)
		}
		// RFC 8414 §3.3: identical, no normalisation.
		if asm.Issuer != issuer {
			return nil, fmt.Errorf("authorization server metadata at %s says issuer %q, not %q: refused", u, asm.Issuer, issuer)
		}
		for name, e := range map[string]string{"authorization_endpoint": asm.AuthorizationEndpoint, "token_endpoint": asm.TokenEndpoint} {
			if e == "" && (name == "token_endpoint" || needPKCE) {
				return nil, fmt.Errorf("authorization server %s has no %s", issuer, name)
			}
			if e != "" {
				if err := checkEndpoint(e); err != nil {
					return nil, fmt.Errorf("authorization server %s %s: %w", issuer, name, err)
				}
			}
		}
		if needPKCE && !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
			return nil, fmt.Errorf("authorization server %s does not advertise PKCE S256 (code_challenge_methods_supported): refused", issuer)
		}
		return &asm, nil
	}
	return nil, fmt.Errorf("authorization server metadata for %s: none found: %w", issuer, errors.Join(errs...))
}
