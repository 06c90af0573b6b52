package auth

import (
	"net/http"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// MetadataHandler serves the gateway's OAuth 2.0 protected resource
// metadata (RFC 9728), which MCP clients from revision 2025-06-18 on read
// to find where to get a token: resource is the gateway's MCP URL, the
// authorization server is the policy's jwt issuer, with its scopes, and
// tokens go in the Authorization header. The door mounts it at the URL
// the policy's resource_metadata names (the challenge points there);
// it is answered from the policy in force, and is 404 while the policy
// has no jwt sub-section (there is then no server to send clients to).
// It holds no secret: the SDK's handler serves it to any origin.
func (a *Authenticator) MetadataHandler(resource string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := a.o.Policy.Engine().Gateway()
		if g.JWT == nil {
			http.NotFound(w, r)
			return
		}
		sdkauth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
			Resource:               resource,
			AuthorizationServers:   []string{g.JWT.Issuer},
			ScopesSupported:        g.JWT.Scopes,
			BearerMethodsSupported: []string{"header"},
			ResourceName:           g.Realm,
		}).ServeHTTP(w, r)
	})
}
