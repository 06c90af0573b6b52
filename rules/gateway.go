package rules

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// rankGateway places gateway: after credentials: in the key list; it is
// written here, not in the rank list, so that sections added on other
// branches do not collide with it.
const rankGateway = rankCredentials + 5

func init() {
	register(section{key: "gateway", rank: rankGateway, parse: parseGateway,
		steps: []step{{phase: phaseRules, at: 90, run: compileGateway}}})
}

// The gateway section (issue 17): who an agent is at the MCP gateway
// door. An agent proves its name with one of three credentials:
//
//	gateway:
//	  realm: agentg                # WWW-Authenticate realm; default "agentg"
//	  resource_metadata: https://gw.example/.well-known/oauth-protected-resource  # optional (RFC 9728)
//	  tokens:                      # bearer tokens, stored as SHA-256 digests
//	    - agent: coder             # (agentg gateway token --agent coder prints one)
//	      sha256: 5e884898da28...  # 64 hex digits
//	      id: coder-laptop         # optional; default file:line
//	  jwt:                         # JWTs from the organisation's identity provider
//	    issuer: https://idp.example
//	    audience: [agentg-gateway] # one or more; the token must name one
//	    jwks_url: https://idp.example/.well-known/jwks.json
//	    algorithms: [RS256, ES256] # the default; none and HS* are never accepted
//	    leeway: 30s                # clock skew on exp, nbf, iat; 0s to 5m
//	    claim: sub                 # the claim that names the agent; default sub
//	    agents: {00u1abc: coder}   # optional: claim value -> agent; absent: the value is the name
//	    refetch: 30s               # an unknown kid refetches the JWKS at most this often
//	    scopes: [mcp:tools]        # optional: the token must grant every one (403 otherwise)
//	  mtls:                        # client certificates
//	    ca: clients-ca.pem         # PEM, relative to the policy's directory; re-read on change
//	    name_from: cn              # cn | dns | uri | email: where the agent's name is
//	    agents: {laptop-7.example: coder}  # optional, as for jwt
//
// A bearer token is high-entropy, so its SHA-256 digest compared in
// constant time is the right check: a slow password hash (bcrypt,
// argon2id) would cost milliseconds on every request and add nothing
// against a guess of 256 random bits. The checks themselves (JWKS
// fetching, signature, certificate chains) are package gateway/auth's:
// rules parses, compiles and answers questions without I/O.

// GatewayToken is one bearer token an agent may present.
type GatewayToken struct {
	ID     string // explicit id, or where it is written
	Source string // file:line
	Agent  string
	Digest [sha256.Size]byte
}

// GatewayJWT is the compiled jwt sub-section.
type GatewayJWT struct {
	Issuer     string
	Audience   []string
	JWKSURL    string
	Algorithms []string
	Leeway     time.Duration
	Claim      string
	Refetch    time.Duration
	// Scopes must all be granted by the token (its scope or scp claim);
	// the 401's challenge names them (MCP authorization, RFC 6750).
	Scopes []string
	Source string // file:line of the jwt key

	agents map[string]string // nil: the claim's value is the agent's name
}

// Agent maps a claim value to an agent name; ok is false when the value
// names no agent (not in the table, or not a valid name).
func (j *GatewayJWT) Agent(value string) (string, bool) {
	return mapAgent(j.agents, value)
}

// Mapped reports whether the section maps claim values through a table.
func (j *GatewayJWT) Mapped() bool { return j.agents != nil }

// GatewayMTLS is the compiled mtls sub-section.
type GatewayMTLS struct {
	CAFile   string
	Pool     *x509.CertPool
	CAs      []*x509.Certificate
	NameFrom string // cn, dns, uri or email
	Source   string

	agents map[string]string
}

// Agent maps a certificate name to an agent name, as GatewayJWT.Agent.
func (m *GatewayMTLS) Agent(value string) (string, bool) {
	return mapAgent(m.agents, value)
}

// Mapped reports whether the section maps names through a table.
func (m *GatewayMTLS) Mapped() bool { return m.agents != nil }

func mapAgent(table map[string]string, value string) (string, bool) {
	if table != nil {
		a, ok := table[value]
		return a, ok
	}
	if !validName(value) {
		return "", false
	}
	return value, true
}

// Gateway is the compiled gateway section: Engine.Gateway returns it.
type Gateway struct {
	Realm            string
	ResourceMetadata string
	Source           string // file:line of the section
	JWT              *GatewayJWT
	MTLS             *GatewayMTLS

	tokens []GatewayToken
}

// Defined reports whether the section sets any way to authenticate.
func (g *Gateway) Defined() bool { return len(g.tokens) > 0 || g.JWT != nil || g.MTLS != nil }

// HasTokens reports whether any bearer token is defined.
func (g *Gateway) HasTokens() bool { return len(g.tokens) > 0 }

// Tokens lists the tokens in policy order (digests, never a token).
func (g *Gateway) Tokens() []GatewayToken { return slices.Clone(g.tokens) }

// Token returns the token whose digest is d, or nil. Every digest is
// compared, in constant time, whichever matches: the time taken says
// nothing about which token, if any, is close.
func (g *Gateway) Token(d [sha256.Size]byte) *GatewayToken {
	var found *GatewayToken
	for i := range g.tokens {
		if subtle.ConstantTimeCompare(g.tokens[i].Digest[:], d[:]) == 1 {
			found = &g.tokens[i]
		}
	}
	return found
}

var noGateway = &Gateway{Realm: "agentg"}

// Gateway returns the compiled gateway section (empty when the policy
// has none: nothing authenticates, and the door refuses every request).
func (e *Engine) Gateway() *Gateway {
	if g, ok := e.views.get("gateway").(*Gateway); ok {
		return g
	}
	return noGateway
}

// jwtAlgorithms are the signature algorithms a policy may allow:
// asymmetric only. An HMAC key would have to be shared with agentg, and
// "none" is no signature at all.
var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

type tokenSpec struct {
	GatewayToken
	line int
	node *yaml.Node
}

type gatewaySpec struct {
	line    int
	realm   string
	rm      string
	tokens  []tokenSpec
	jwt     *GatewayJWT
	mtls    *GatewayMTLS
	caNode  *yaml.Node
	jwtLine int
	mtlLine int
}

func parseGateway(p *parser, k, v *yaml.Node, pol *policy) error {
	spec := &gatewaySpec{line: k.Line, realm: "agentg"}
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "realm":
			if spec.realm, err = p.scalar(v); err == nil && (!quotable(spec.realm) || len(spec.realm) > 128) {
				err = p.errf(v, "bad realm %q (1 to 128 printable ASCII characters, no quotes or backslashes)", spec.realm)
			}
		case "resource_metadata":
			if spec.rm, err = p.scalar(v); err == nil {
				if e := checkURL("resource_metadata", spec.rm); e != nil {
					err = p.errf(v, "%v", e)
				}
			}
		case "tokens":
			if v.Kind != yaml.SequenceNode {
				return p.errf(v, "gateway tokens must be a list of {agent: NAME, sha256: HEX}")
			}
			for _, it := range v.Content {
				ts, err := p.gatewayToken(it)
				if err != nil {
					return err
				}
				spec.tokens = append(spec.tokens, ts)
			}
		case "jwt":
			spec.jwtLine = k.Line
			spec.jwt, err = p.gatewayJWT(v)
		case "mtls":
			spec.mtlLine = k.Line
			spec.mtls, spec.caNode, err = p.gatewayMTLS(v)
		default:
			err = p.errf(k, "unknown gateway key %q (want realm, resource_metadata, tokens, jwt, mtls)", k.Value)
		}
		return err
	})
	if err != nil {
		return err
	}
	seen := map[[sha256.Size]byte]int{}
	for _, t := range spec.tokens {
		if prev, dup := seen[t.Digest]; dup {
			return p.errf(t.node, "the same token digest is given twice (also at line %d): one token names one agent", prev)
		}
		seen[t.Digest] = t.line
	}
	pol.specs.set("gateway", spec)
	return nil
}

func (p *parser) gatewayToken(it *yaml.Node) (tokenSpec, error) {
	ts := tokenSpec{line: it.Line}
	var digest *yaml.Node
	err := p.eachKey(it, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "agent":
			if ts.Agent, err = p.scalar(v); err == nil && !validName(ts.Agent) {
				err = p.errf(v, "bad agent name %q (printable, no spaces, at most 64 bytes)", ts.Agent)
			}
		case "sha256":
			digest = v
			var s string
			if s, err = p.scalar(v); err != nil {
				return err
			}
			b, e := hex.DecodeString(s)
			if e != nil || len(b) != sha256.Size {
				hint := ""
				if strings.HasPrefix(s, "$") {
					hint = ": a gateway token is checked by its SHA-256 digest, not a password hash"
				}
				return p.errf(v, "bad sha256 (want the token's SHA-256 digest, 64 hex digits, as agentg gateway token prints it)%s", hint)
			}
			copy(ts.Digest[:], b)
		case "id":
			if ts.ID, err = p.scalar(v); err == nil && !validName(ts.ID) {
				err = p.errf(v, "bad id %q (printable, no spaces, at most 64 bytes)", ts.ID)
			}
		default:
			err = p.errf(k, "unknown gateway token key %q (want agent, sha256, id)", k.Value)
		}
		return err
	})
	if err != nil {
		return ts, err
	}
	if ts.Agent == "" || digest == nil {
		return ts, p.errf(it, "a gateway token needs an agent and a sha256")
	}
	ts.node = digest
	return ts, nil
}

func (p *parser) gatewayJWT(v *yaml.Node) (*GatewayJWT, error) {
	j := &GatewayJWT{Leeway: 30 * time.Second, Claim: "sub", Refetch: 30 * time.Second}
	var issuer, jwks *yaml.Node
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "issuer":
			issuer = v
			if j.Issuer, err = p.scalar(v); err == nil && j.Issuer == "" {
				err = p.errf(v, "empty issuer")
			}
		case "audience":
			its, e := p.items(v)
			if e != nil {
				return e
			}
			for _, a := range its {
				if a.Value == "" {
					return p.errf(a, "empty audience")
				}
				j.Audience = append(j.Audience, a.Value)
			}
		case "jwks_url":
			jwks = v
			if j.JWKSURL, err = p.scalar(v); err == nil {
				if e := checkURL("jwks_url", j.JWKSURL); e != nil {
					err = p.errf(v, "%v", e)
				}
			}
		case "algorithms":
			its, e := p.items(v)
			if e != nil {
				return e
			}
			for _, a := range its {
				if !slices.Contains(jwtAlgorithms, a.Value) {
					return p.errf(a, "algorithm %q is not allowed (want some of %s: asymmetric signatures only)", a.Value, strings.Join(jwtAlgorithms, ", "))
				}
				if !slices.Contains(j.Algorithms, a.Value) {
					j.Algorithms = append(j.Algorithms, a.Value)
				}
			}
		case "leeway":
			j.Leeway, err = p.duration(v, 0, 5*time.Minute)
		case "refetch":
			j.Refetch, err = p.duration(v, time.Second, time.Hour)
		case "scopes":
			its, e := p.items(v)
			if e != nil {
				return e
			}
			for _, sc := range its {
				if !validScope(sc.Value) {
					return p.errf(sc, "bad scope %q (RFC 6749 scope-token: printable ASCII, no spaces, quotes or backslashes)", sc.Value)
				}
				j.Scopes = append(j.Scopes, sc.Value)
			}
		case "claim":
			if j.Claim, err = p.scalar(v); err == nil && (j.Claim == "" || len(j.Claim) > 128) {
				err = p.errf(v, "bad claim name %q", j.Claim)
			}
		case "agents":
			j.agents, err = p.agentTable(v)
		default:
			err = p.errf(k, "unknown gateway jwt key %q (want issuer, audience, jwks_url, algorithms, leeway, claim, agents, refetch, scopes)", k.Value)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case issuer == nil:
		return nil, p.errf(v, "gateway jwt needs an issuer")
	case j.Audience == nil:
		return nil, p.errf(v, "gateway jwt needs an audience: a token issued for another service must not open the gateway")
	case jwks == nil:
		return nil, p.errf(v, "gateway jwt needs a jwks_url")
	}
	if j.Algorithms == nil {
		j.Algorithms = []string{"RS256", "ES256"}
	}
	return j, nil
}

// quotable reports whether s can go into a WWW-Authenticate
// quoted-string as it is: 1 to 2048 printable ASCII characters, no quote
// or backslash.
func quotable(s string) bool {
	if s == "" || len(s) > 2048 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// validScope is RFC 6749's scope-token: %x21 / %x23-5B / %x5D-7E.
func validScope(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkURL accepts an https URL, or plain http to a loopback address (a
// provider on the same machine): keys fetched, or a client sent, over
// clear text on a network could be anyone's. No quotes or backslashes:
// the URL goes into a WWW-Authenticate challenge.
func checkURL(key, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || !quotable(s) || strings.Contains(s, " ") {
		return fmt.Errorf("bad %s %q (an https URL)", key, s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if a, err := netip.ParseAddr(h); h == "localhost" || err == nil && a.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("%s %q must be https (plain http only to a loopback address)", key, s)
}

func (p *parser) gatewayMTLS(v *yaml.Node) (*GatewayMTLS, *yaml.Node, error) {
	m := &GatewayMTLS{NameFrom: "cn"}
	var ca *yaml.Node
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "ca":
			ca = v
			if m.CAFile, err = p.scalar(v); err == nil && m.CAFile == "" {
				err = p.errf(v, "empty ca file name")
			}
		case "name_from":
			m.NameFrom, err = p.oneOf(v, "cn", "dns", "uri", "email")
		case "agents":
			m.agents, err = p.agentTable(v)
		default:
			err = p.errf(k, "unknown gateway mtls key %q (want ca, name_from, agents)", k.Value)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if ca == nil {
		return nil, nil, p.errf(v, "gateway mtls needs a ca: the CA file client certificates must chain to")
	}
	return m, ca, nil
}

// agentTable parses {VALUE: AGENT, ...}.
func (p *parser) agentTable(v *yaml.Node) (map[string]string, error) {
	t := map[string]string{}
	err := p.eachKey(v, func(k, v *yaml.Node) error {
		if k.Value == "" {
			return p.errf(k, "empty value in an agents table")
		}
		a, err := p.scalar(v)
		if err == nil && !validName(a) {
			err = p.errf(v, "bad agent name %q", a)
		}
		t[k.Value] = a
		return err
	})
	if err == nil && len(t) == 0 {
		err = p.errf(v, "empty agents table (leave the key out to take the value as the agent's name)")
	}
	return t, err
}

func compileGateway(c *compiler) error {
	spec, _ := c.pol.specs.get("gateway").(*gatewaySpec)
	if spec == nil {
		return nil
	}
	g := &Gateway{Realm: spec.realm, ResourceMetadata: spec.rm, Source: fmt.Sprintf("%s:%d", c.pol.file, spec.line)}
	ids := map[string]string{}
	for _, ts := range spec.tokens {
		t := ts.GatewayToken
		src := fmt.Sprintf("%s:%d", c.pol.file, ts.line)
		t.Source = src
		if t.ID == "" {
			t.ID = src
		}
		if prev, dup := ids[t.ID]; dup {
			return fmt.Errorf("load policy %s: gateway token id %q used twice (also at %s)", src, t.ID, prev)
		}
		ids[t.ID] = src
		g.tokens = append(g.tokens, t)
	}
	if spec.jwt != nil {
		j := *spec.jwt
		j.Source = fmt.Sprintf("%s:%d", c.pol.file, spec.jwtLine)
		g.JWT = &j
	}
	if spec.mtls != nil {
		m := *spec.mtls
		m.Source = fmt.Sprintf("%s:%d", c.pol.file, spec.mtlLine)
		if !filepath.IsAbs(m.CAFile) {
			m.CAFile = filepath.Join(c.dir, m.CAFile)
		}
		// Watched with the policy: a rotated CA file reloads it.
		c.e.files = append(c.e.files, m.CAFile)
		var err error
		if m.CAs, err = readCAFile(m.CAFile); err != nil {
			return fmt.Errorf("load policy %s:%d: gateway mtls ca: %w", c.pol.file, spec.caNode.Line, err)
		}
		m.Pool = x509.NewCertPool()
		for _, ca := range m.CAs {
			m.Pool.AddCert(ca)
		}
		g.MTLS = &m
	}
	c.e.views.set("gateway", g)
	return nil
}

// readCAFile reads the PEM certificates of a CA file: at least one, each
// a CA certificate, and nothing else in the file.
func readCAFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: a %s block (want CERTIFICATE blocks only)", path, blk.Type)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("%s: certificate %q is not a CA certificate", path, cert.Subject.String())
		}
		out = append(out, cert)
	}
	if len(strings.TrimSpace(string(b))) != 0 {
		return nil, fmt.Errorf("%s: text that is not PEM after the certificates", path)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return out, nil
}

// gatewayWarnings: a gateway token or agents table naming an agent the
// agents section does not define, when it defines any. At the proxy such
// a name is refused; at the gateway the credential proves it, so a
// misspelt name would quietly get the rules of no agent.
func (w *warner) gatewayWarnings() {
	g, t := w.e.Gateway(), &w.e.agents
	if len(t.list) == 0 {
		return
	}
	undefined := func(src, what, agent string) {
		if t.byName[agent] == nil {
			w.add(src, "%s names agent %s, which the agents section does not define: no rule scoped to an agent applies to it", what, agent)
		}
	}
	for _, tk := range g.tokens {
		undefined(tk.Source, "gateway token "+tk.ID, tk.Agent)
	}
	if g.JWT != nil {
		for _, a := range sortedValues(g.JWT.agents) {
			undefined(g.JWT.Source, "the gateway jwt agents table", a)
		}
	}
	if g.MTLS != nil {
		for _, a := range sortedValues(g.MTLS.agents) {
			undefined(g.MTLS.Source, "the gateway mtls agents table", a)
		}
	}
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
