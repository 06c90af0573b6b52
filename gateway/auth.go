package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/netip"

	"github.com/agentg/agentg/rules"
)

// Who is the agent behind a request to the gateway, as proven.
type Who struct {
	Agent  string
	Client string // the client's address, ip:port
	// Subject is the identity provider's token that proved the agent,
	// when one did (gateway/auth's Identity.Subject): a token_exchange
	// binding exchanges it for the upstream's. It is the one of the
	// request that opened the session. Never logged.
	Subject string
}

// Authenticator names the agent behind a request to the gateway, or
// refuses it. A refusal is answered 401 with Challenge's
// WWW-Authenticate, and nothing of the request reaches an upstream.
// Bearer tokens, JWTs and client certificates (issue 17, "Agents at the
// gateway") plug in here.
type Authenticator interface {
	Authenticate(r *http.Request, e *rules.Engine) (Who, error)
	// Challenge is the WWW-Authenticate value sent with a 401.
	Challenge() string
}

// ByAddress is the default Authenticator: the agent the policy names for
// the request's source address (rules.AgentAt, as the proxy names one
// without credentials), or the address itself.
type ByAddress struct{}

// Authenticate implements Authenticator.
func (ByAddress) Authenticate(r *http.Request, e *rules.Engine) (Who, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	var src netip.Addr
	if err == nil {
		src, _ = netip.ParseAddr(host)
	}
	if !src.IsValid() && r.RemoteAddr != "@" && r.RemoteAddr != "" {
		return Who{}, errors.New("the client's address cannot be read")
	}
	agent, err := e.AgentAt(rules.Claim{Src: src})
	if err != nil {
		return Who{}, err
	}
	if agent == "" {
		agent = "local" // a unix socket's peer has no address
	}
	return Who{Agent: agent, Client: r.RemoteAddr}, nil
}

// Challenge implements Authenticator.
func (ByAddress) Challenge() string { return `Bearer realm="agentg"` }
