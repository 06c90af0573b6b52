package rules

import (
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/creds"
)

// The credentials section's bindings, as parsed: what each attaches
// (header, basic, query, token_exchange, oauth, client_cert) to which
// requests (host or server, path, agents). The section itself, its
// secrets and its compile step are credentials.go.

// headersNotSet are headers a binding may not set: they frame the
// request or address a hop, not the upstream service.
var headersNotSet = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection",
	"Keep-Alive", "Te", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Cookie"}

func (p *parser) binding(it *yaml.Node) (bindingSpec, error) {
	bs := bindingSpec{line: it.Line}
	b := &bs.b
	var hostNode *yaml.Node
	err := p.eachKey(it, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "id":
			if b.ID, err = p.scalar(v); err == nil && !validName(b.ID) {
				err = p.errf(v, "bad id %q (printable, no spaces, at most 64 bytes)", b.ID)
			}
		case "server", "servers":
			if bs.servers != nil {
				return p.errf(k, "a binding names its servers once (server or servers)")
			}
			bs.servers = v
			b.servers, err = p.bindingServers(v)
		case "client_cert":
			bs.cert, err = p.clientCert(k, v)
		case "host", "hosts":
			hostNode = v
			b.hosts, err = p.namePatterns(v, "a binding (bindings name hosts)")
		case "path":
			b.glob, err = p.pathGlob(v)
		case "agents":
			its, e := p.items(v)
			if e != nil {
				return e
			}
			for _, a := range its {
				if !validName(a.Value) {
					return p.errf(a, "bad agent name %q", a.Value)
				}
				b.agents = append(b.agents, a.Value)
			}
		case "secret":
			bs.own = v
			if b.Secret, err = p.scalar(v); err == nil && !creds.ValidName(b.Secret) {
				err = p.errf(v, "bad secret name %q", b.Secret)
			}
		case "insecure_http":
			b.PlainHTTP, err = p.boolean(v)
		case "header":
			err = p.inject(bs.k, k)
			bs.k, b.Kind = k, InjectHeader
			if err == nil {
				err = p.headerInject(v, b)
			}
		case "basic":
			err = p.inject(bs.k, k)
			bs.k, b.Kind = k, InjectBasic
			if err == nil {
				err = p.eachKey(v, func(k, v *yaml.Node) (err error) {
					if k.Value != "user" {
						return p.errf(k, "unknown basic key %q (want user)", k.Value)
					}
					if b.User, err = p.scalar(v); err == nil && (strings.ContainsAny(b.User, ":\r\n\x00")) {
						err = p.errf(v, "a Basic user name cannot contain ':' or a line break")
					}
					return err
				})
			}
		case "query":
			err = p.inject(bs.k, k)
			bs.k, b.Kind = k, InjectQuery
			if err == nil {
				if b.Query, err = p.scalar(v); err == nil && (b.Query == "" || strings.ContainsAny(b.Query, "&=#+% ") || !httpguts.ValidHeaderFieldValue(b.Query)) {
					err = p.errf(v, "bad query parameter name %q", b.Query)
				}
			}
		case "token_exchange":
			err = p.inject(bs.k, k)
			bs.k, b.Kind = k, InjectExchange
			if err == nil {
				b.Exchange, err = p.tokenExchange(v)
			}
		case "oauth":
			err = p.inject(bs.k, k)
			bs.k, b.Kind = k, InjectOAuth
			if err == nil {
				bs.oauth, err = p.oauthInject(v, b)
			}
		default:
			err = p.errf(k, "unknown binding key %q (want id, host or server, path, agents, secret, insecure_http, one of header, basic, query, token_exchange or oauth, and client_cert)", k.Value)
		}
		return err
	})
	if err != nil {
		return bs, err
	}
	if (hostNode == nil) == (bs.servers == nil) {
		if hostNode != nil {
			return bs, p.errf(bs.servers, "a binding names a host or an mcp server, not both")
		}
		return bs, p.errf(it, "a binding needs a host or a server")
	}
	if bs.k == nil && bs.cert == nil {
		return bs, p.errf(it, "a binding needs one of header, basic, query or oauth (or token_exchange), or a client_cert")
	}
	var names []string
	switch {
	case bs.k == nil:
		if err := p.certOnly(&bs); err != nil {
			return bs, err
		}
	case b.Kind == InjectOAuth:
		if b.ID == "" {
			return bs, p.errf(it, "an oauth binding needs an id: agentg oauth connect names the binding by it")
		}
		if bs.own != nil {
			return bs, p.errf(bs.own, "an oauth binding attaches the token agentg obtains: name its secrets under oauth (client_secret, private_key), not secret:")
		}
		if bs.cert != nil {
			return bs, p.errf(bs.cert.node, "an oauth binding attaches a token: present a client certificate with a binding of its own")
		}
		return bs, nil
	case b.Kind == InjectExchange:
		if bs.own != nil {
			return bs, p.errf(bs.own, "a token_exchange binding attaches the token it is issued: its client_secret names the STS's secret, not secret:")
		}
		names = []string{b.Exchange.ClientSecret}
	case b.Kind == InjectHeader:
		names = b.Template.Secrets(b.Secret)
		if slices.Contains(names, "") {
			return bs, p.errf(bs.k, "the template's {{secret}} needs the binding's secret: key")
		}
		if len(names) == 0 {
			return bs, p.errf(bs.k, "the header's value names no secret (want {{secret}} or {{secret NAME}})")
		}
	default:
		if b.Secret == "" {
			return bs, p.errf(it, "a %s binding needs a secret", bs.k.Value)
		}
		names = []string{b.Secret}
	}
	if bs.cert != nil {
		if b.PlainHTTP {
			return bs, p.errf(bs.cert.node, "a client certificate is presented in TLS only: client_cert and insecure_http do not go together")
		}
		if !slices.Contains(names, bs.cert.key) {
			names = append(names, bs.cert.key)
		}
	}
	b.Secrets = strings.Join(names, ",")
	return bs, nil
}

// inject refuses a second way of injecting in one binding.
func (p *parser) inject(prev, k *yaml.Node) error {
	if prev != nil {
		return p.errf(k, "a binding injects one way: %s and %s both given", prev.Value, k.Value)
	}
	return nil
}

func (p *parser) headerInject(v *yaml.Node, b *Binding) error {
	var tmpl *yaml.Node
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "name":
			var s string
			if s, err = p.scalar(v); err != nil {
				return err
			}
			if !isToken(s) {
				return p.errf(v, "bad header name %q", s)
			}
			b.Header = http.CanonicalHeaderKey(s)
			if slices.Contains(headersNotSet, b.Header) {
				return p.errf(v, "a binding cannot set %s", b.Header)
			}
		case "value":
			tmpl = v
			var s string
			if s, err = p.scalar(v); err != nil {
				return err
			}
			if b.Template, err = creds.ParseTemplate(s); err != nil {
				return p.errf(v, "%v", err)
			}
		default:
			err = p.errf(k, "unknown header key %q (want name and value)", k.Value)
		}
		return err
	})
	if err != nil {
		return err
	}
	if b.Header == "" || tmpl == nil {
		return p.errf(v, "a header needs a name and a value")
	}
	return nil
}
