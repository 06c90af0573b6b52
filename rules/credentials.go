package rules

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/creds/oauth"
)

func init() {
	register(section{key: "credentials", rank: rankCredentials, parse: parseCredentials,
		steps: []step{{phase: phaseRules, at: 80, run: compileCredentials}}})
}

// The credentials section (issue 16, first slice): secrets by name and
// where each comes from, and bindings that attach one to the requests
// agentg terminates, after every check allowed them:
//
//	credentials:
//	  secrets:
//	    github: {env: GITHUB_TOKEN}
//	    jira: {file: /run/secrets/jira}        # re-read on reload
//	    vault: {command: [vault, read, -field=token, kv/x], timeout: 5s}
//	    demo: {insecure_inline: not-a-real-key} # agentg check warns
//	  bindings:
//	    - id: gh
//	      host: api.github.com                  # host patterns, as in hosts
//	      path: /repos/**                       # optional glob
//	      agents: [coder]                       # optional
//	      secret: github
//	      header: {name: Authorization, value: "Bearer {{secret}}"}
//	    - {host: jira.example.com, secret: jira, basic: {user: bot}}
//	    - {host: api.example.com, secret: demo, query: api_key}
//
// A binding applies to https requests only (intercepted TLS) unless it
// says insecure_http: true: a secret is not sent in clear text by default.
// The first binding that matches a request is the one used.

// InjectKind says how a binding attaches its secret.
type InjectKind uint8

const (
	InjectHeader   InjectKind = iota + 1 // a header from a template
	InjectBasic                          // Basic auth, the secret as password
	InjectQuery                          // a query parameter
	InjectOAuth                          // an OAuth access token agentg obtained (credentials_oauth.go)
	InjectExchange                       // the agent's token exchanged at an STS (credentials_exchange.go)
)

// Binding is one compiled binding.
type Binding struct {
	ID     string // explicit id, or where it is written
	Source string // file:line
	// Secret is the binding's own secret ({{secret}}, the Basic password,
	// the query value); "" when the template names its secrets.
	Secret string
	// Secrets names, for the event, every secret the binding uses,
	// joined with ",".
	Secrets string

	Kind     InjectKind
	Header   string         // InjectHeader: canonical header name
	Template creds.Template // InjectHeader
	User     string         // InjectBasic
	Query    string         // InjectQuery: the parameter's name
	Exchange *TokenExchange // InjectExchange (credentials_exchange.go)
	OAuth    *oauth.Config  // InjectOAuth (credentials_oauth.go)

	PlainHTTP bool // insecure_http: also on plain http

	// Cert is the client certificate presented for mTLS (client_cert:,
	// credentials_mtls.go), nil for none. Kind is 0 when the binding only
	// presents one.
	Cert *ClientCert

	hosts  []pattern
	glob   *glob    // nil: every path
	agents []string // nil: every agent

	servers []string // server:, instead of hosts (credentials_servers.go)
}

// Credentials is the compiled credentials section: Engine.Credentials
// returns it.
type Credentials struct {
	mcp      *MCPRules // the servers a server: binding names
	store    *creds.Store
	bindings []Binding
	inline   []Warning // secrets written in the policy
}

// Defined reports whether the policy binds any secret.
func (c *Credentials) Defined() bool { return len(c.bindings) > 0 }

// Store resolves the policy's secrets; one per load, so a reload reads
// them again.
func (c *Credentials) Store() *creds.Store { return c.store }

// Bindings lists the bindings in policy order.
func (c *Credentials) Bindings() []Binding { return c.bindings }

// Match returns the first binding for a request by agent to h (scheme
// "http" or "https") at the decoded path, or nil. It does not allocate.
func (c *Credentials) Match(agent string, h addr.Host, scheme, path string) *Binding {
	return c.match(agent, h, scheme, path, serverAt{})
}

// match is Match with srv, the server the request is for when the caller
// knows it already (MatchServer), else asked of mcp servers on first need.
func (c *Credentials) match(agent string, h addr.Host, scheme, path string, srv serverAt) *Binding {
	if h.IsIP() {
		return nil
	}
	for i := range c.bindings {
		b := &c.bindings[i]
		if scheme != "https" && !b.PlainHTTP {
			continue
		}
		if b.agents != nil && !slices.Contains(b.agents, agent) {
			continue
		}
		if b.glob != nil && !b.glob.match(path) {
			continue
		}
		if b.servers != nil {
			if srv.is(c.mcp, h, path, b.servers) {
				return b
			}
			continue
		}
		for _, pt := range b.hosts {
			if pt.covers(h.Name) {
				return b
			}
		}
	}
	return nil
}

var noCredentials = &Credentials{store: creds.NewStore(nil)}

// Credentials returns the compiled credentials section (empty when the
// policy has none).
func (e *Engine) Credentials() *Credentials {
	if c, ok := e.views.get("credentials").(*Credentials); ok {
		return c
	}
	return noCredentials
}

type secretSpec struct {
	line int
	src  creds.Source
}

type bindingSpec struct {
	b    Binding
	line int
	k    *yaml.Node // the inject key, for errors
	own  *yaml.Node // the secret key, nil when absent

	cert    *clientCertSpec // client_cert:, nil when absent
	servers *yaml.Node      // server: or servers:, nil when absent
	// oauth are the secret names an oauth key uses, for errors.
	oauth []*yaml.Node
}

type credentialsSpec struct {
	secrets  map[string]secretSpec
	order    []string
	bindings []bindingSpec
}

func parseCredentials(p *parser, _, v *yaml.Node, pol *policy) error {
	spec := &credentialsSpec{secrets: map[string]secretSpec{}}
	err := p.eachKey(v, func(k, v *yaml.Node) error {
		switch k.Value {
		case "secrets":
			return p.eachKey(v, func(k, v *yaml.Node) error {
				if !creds.ValidName(k.Value) {
					return p.errf(k, "bad secret name %q (letters, digits, '-', '_', '.')", k.Value)
				}
				src, err := p.secretSource(v)
				if err != nil {
					return err
				}
				spec.secrets[k.Value] = secretSpec{line: k.Line, src: src}
				spec.order = append(spec.order, k.Value)
				return nil
			})
		case "bindings":
			if v.Kind != yaml.SequenceNode {
				return p.errf(v, "credentials bindings must be a list")
			}
			for _, it := range v.Content {
				b, err := p.binding(it)
				if err != nil {
					return err
				}
				spec.bindings = append(spec.bindings, b)
			}
			return nil
		}
		return p.errf(k, "unknown credentials key %q (want secrets or bindings)", k.Value)
	})
	if err != nil {
		return err
	}
	if err := p.checkClientCertKeys(spec); err != nil {
		return err
	}
	for _, b := range spec.bindings {
		for _, n := range b.oauth {
			if _, ok := spec.secrets[n.Value]; !ok {
				return p.errf(n, "secret %q is not defined under credentials secrets", n.Value)
			}
		}
		if b.b.Kind == InjectOAuth {
			continue
		}
		names := strings.Split(b.b.Secrets, ",")
		if b.b.Secret != "" {
			names = append(names, b.b.Secret)
		}
		for _, n := range names {
			if _, ok := spec.secrets[n]; !ok {
				at := b.k
				if at == nil {
					at = b.cert.node
				}
				if b.own != nil {
					at = b.own
				}
				return p.errf(at, "secret %q is not defined under credentials secrets", n)
			}
		}
	}
	pol.specs.set("credentials", spec)
	return nil
}

// secretSource parses one secret's source: exactly one of env, file,
// command (with timeout), insecure_inline and kms (a client
// certificate's key, credentials_mtls.go).
func (p *parser) secretSource(v *yaml.Node) (creds.Source, error) {
	var src creds.Source
	var timeout *yaml.Node
	n := 0
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "env":
			n++
			src.Kind = creds.KindEnv
			if src.Env, err = p.scalar(v); err == nil && (src.Env == "" || strings.ContainsAny(src.Env, "=\x00")) {
				err = p.errf(v, "bad environment variable name %q", src.Env)
			}
		case "file":
			n++
			src.Kind = creds.KindFile
			if src.Path, err = p.scalar(v); err == nil && src.Path == "" {
				err = p.errf(v, "empty file name")
			}
		case "command":
			n++
			src.Kind = creds.KindCommand
			its, e := p.items(v)
			if e != nil {
				return e
			}
			for _, a := range its {
				src.Argv = append(src.Argv, a.Value)
			}
			if src.Argv[0] == "" {
				err = p.errf(v, "empty command")
			}
		case "insecure_inline":
			n++
			s, e := p.scalar(v)
			if e != nil {
				return e
			}
			if s == "" {
				return p.errf(v, "empty insecure_inline value")
			}
			src = creds.Inline(s)
		case "kms":
			n++
			var uri string
			uri, err = p.kmsURI(v)
			src = creds.KMS(uri)
		case "timeout":
			timeout = v
		default:
			err = p.errf(k, "unknown secret source %q (want env, file, command, insecure_inline or kms)", k.Value)
		}
		return err
	})
	if err != nil {
		return creds.Source{}, err
	}
	if n != 1 {
		return creds.Source{}, p.errf(v, "a secret needs exactly one of env, file, command, insecure_inline or kms")
	}
	if timeout != nil {
		if src.Kind != creds.KindCommand {
			return creds.Source{}, p.errf(timeout, "timeout applies to a command only")
		}
		d, err := time.ParseDuration(timeout.Value)
		if err != nil || d <= 0 || d > 5*time.Minute {
			return creds.Source{}, p.errf(timeout, "bad timeout %q (a duration such as 5s, at most 5m)", timeout.Value)
		}
		src.Timeout = d
	}
	return src, nil
}

func compileCredentials(c *compiler) error {
	spec, _ := c.pol.specs.get("credentials").(*credentialsSpec)
	if spec == nil {
		return nil
	}
	cr := &Credentials{mcp: &c.e.mcp}
	srcs := make(map[string]creds.Source, len(spec.secrets))
	for _, name := range spec.order {
		s := spec.secrets[name]
		if s.src.Kind == creds.KindFile {
			if !filepath.IsAbs(s.src.Path) {
				s.src.Path = filepath.Join(c.dir, s.src.Path)
			}
			// Watched with the policy (Live): a rotated secret file
			// reloads the policy, which reads it again.
			c.e.files = append(c.e.files, s.src.Path)
		}
		if s.src.Kind == creds.KindInline {
			cr.inline = append(cr.inline, Warning{Source: fmt.Sprintf("%s:%d", c.pol.file, s.line),
				Text: "secret " + name + " is written in the policy (insecure_inline): anyone who can read the policy has it; use env, file or command"})
			if s.src.Short() {
				cr.inline = append(cr.inline, Warning{Source: fmt.Sprintf("%s:%d", c.pol.file, s.line), Text: shortWarning(name)})
			}
		}
		srcs[name] = s.src
	}
	cr.store = creds.NewStore(srcs)
	ids := map[string]string{}
	for _, bs := range spec.bindings {
		b := bs.b
		b.Source = fmt.Sprintf("%s:%d", c.pol.file, bs.line)
		if b.ID == "" {
			b.ID = b.Source
		}
		if b.Kind == InjectOAuth {
			b.Secrets = "oauth:" + b.ID // the token, named for the event
		}
		if prev, dup := ids[b.ID]; dup {
			return fmt.Errorf("load policy %s: binding id %q used twice (also at %s)", b.Source, b.ID, prev)
		}
		if err := c.bindingServers(&b, bs); err != nil {
			return err
		}
		if err := c.loadClientCert(&b, bs, srcs); err != nil {
			return err
		}
		ids[b.ID] = b.Source
		cr.bindings = append(cr.bindings, b)
	}
	c.e.views.set("credentials", cr)
	return nil
}

// credentialWarnings adds the section's warnings for agentg check: a
// secret written in the policy, and a binding whose host is allowed but
// not intercepted for some agent it applies to (its https requests are
// inside TLS agentg does not terminate: it never attaches its secret).
func (w *warner) credentialWarnings() {
	cr := w.e.Credentials()
	for _, wr := range cr.inline {
		w.add(wr.Source, "%s", wr.Text)
	}
	for i := range cr.bindings {
		w.bindingUnintercepted(&cr.bindings[i])
		w.clientCertExpiring(&cr.bindings[i])
		w.exchangeUnreachable(&cr.bindings[i]) // credentials_exchange.go
	}
}

func (w *warner) bindingUnintercepted(b *Binding) {
	agents := w.agents
	if b.agents != nil {
		agents = b.agents
	}
	for _, pt := range b.hosts {
		name := pt.name
		if pt.kind == kindSub {
			name = probeLabel + "." + pt.name
		}
		h := addr.Host{Name: name, Port: 443}
		for _, a := range agents {
			if !w.e.Host(a, h).Allowed() {
				continue
			}
			if ic, _ := w.e.Intercept(a, h); !ic {
				w.add(b.Source, "binding %s never attaches secret %s %s on port 443: tunnels to %s are not intercepted",
					b.ID, b.Secrets, w.agentLabel(a), hostLabel(name))
				return
			}
		}
	}
}
