package rules

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/internal/filetrust"
)

func init() {
	register(section{key: "agents", rank: rankAgents,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.agents, err = p.agents(v)
			return err
		},
		steps: []step{{phase: phaseNames, at: 20, run: func(c *compiler) (err error) {
			c.e.agents, err = compileAgents(c)
			return err
		}}}})
	register(section{key: "free_agent_names", rank: rankFreeNames,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.freeNames, err = p.boolean(v)
			return err
		}})
}

// The agents section: who may claim which agent name, and naming the
// agent behind a connection.

type agentSpec struct {
	line    int
	name    string
	pw      password // hasPass: from password, or from pwFile at compile
	hasPass bool
	pwLine  int    // where password or password_file is written
	pwFile  string // password_file, as written
	cidrs   []netip.Prefix
}

func (p *parser) agents(n *yaml.Node) ([]agentSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "agents must be a list")
	}
	var out []agentSpec
	names := map[string]bool{}
	for _, it := range n.Content {
		a := agentSpec{line: it.Line}
		err := p.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "name":
				if a.name, err = p.scalar(v); err == nil && !validName(a.name) {
					err = p.errf(v, "bad agent name %q (printable, no spaces, at most 64 bytes)", a.name)
				} else if err == nil && (strings.HasPrefix(a.name, AgentServerPrefix) || strings.HasPrefix(a.name, ProxyUserPrefix)) {
					err = p.errf(v, "agent name %q: names starting with %q or %q are the MCP servers agentg starts (mcp.servers command:)", a.name, AgentServerPrefix, ProxyUserPrefix)
				}
			case "password", "password_file":
				if a.hasPass {
					return p.errf(k, "an agent has one of password or password_file")
				}
				a.hasPass, a.pwLine = true, k.Line
				var s string
				if s, err = p.scalar(v); err != nil {
					return err
				}
				if s == "" {
					return p.errf(v, "empty %s (leave the key out for an agent without a password)", k.Value)
				}
				if k.Value == "password_file" {
					a.pwFile = s
					return nil
				}
				if a.pw, err = parsePassword(s); err != nil {
					err = p.errf(v, "agent password: %v", err)
				}
			case "cidrs":
				a.cidrs, err = p.prefixes(v)
			default:
				err = p.errf(k, "unknown agent key %q (want name, password, password_file, cidrs)", k.Value)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if a.name == "" {
			return nil, p.errf(it, "agent without a name")
		}
		if a.name == SelfAgent {
			return nil, p.errf(it, "%v", errSelfAgent)
		}
		if names[a.name] {
			return nil, p.errf(it, "duplicate agent %q", a.name)
		}
		names[a.name] = true
		out = append(out, a)
	}
	return out, nil
}

// agentTable is the compiled agents section.
type agentTable struct {
	list      []agentSpec
	byName    map[string]*agentSpec
	freeNames bool           // a client may claim a name the policy does not define
	pwCache   *passwordCache // verified hashes, for this load (passwords.go)
}

func compileAgents(c *compiler) (agentTable, error) {
	pol := c.pol
	t := agentTable{list: pol.agents, byName: make(map[string]*agentSpec, len(pol.agents)),
		freeNames: pol.freeNames || len(pol.agents) == 0}
	for i := range t.list {
		a := &t.list[i]
		t.byName[a.name] = a
		if a.pwFile == "" {
			continue
		}
		path := a.pwFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(c.dir, path)
		}
		pw, err := readPasswordFile(a.name, path)
		if err != nil {
			return t, fmt.Errorf("load policy %s:%d: %w", pol.file, a.pwLine, err)
		}
		a.pw, a.pwFile = pw, path
		// Watched with the policy (Live): a changed password file
		// reloads the policy, which reads it again.
		c.e.files = append(c.e.files, path)
	}
	var err error
	if t.pwCache, err = newPasswordCache(); err != nil {
		return t, fmt.Errorf("load policy %s: %w", pol.file, err)
	}
	return t, nil
}

// maxPasswordFile bounds a password file: it holds one line.
const maxPasswordFile = 4 << 10

// readPasswordFile reads a password or a hash from its file: one line,
// the trailing newline dropped. The file is a secret an operator
// provides: owned by agentg's user or root and neither readable nor
// writable by others (filetrust.Provided), since whoever can write it can
// be the agent. Errors never quote the content.
func readPasswordFile(agent, path string) (password, error) {
	b, err := filetrust.ReadSecret("agent "+agent+"'s password_file", path, filetrust.Provided)
	if err != nil {
		return password{}, err
	}
	if len(b) > maxPasswordFile {
		return password{}, fmt.Errorf("agent %s's password_file %s is larger than %d bytes (it holds one password or hash)", agent, path, maxPasswordFile)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if bytes.ContainsAny(b, "\r\n") {
		return password{}, fmt.Errorf("agent %s's password_file %s holds more than one line", agent, path)
	}
	pw, err := parsePassword(string(b))
	if err != nil {
		return password{}, fmt.Errorf("agent %s's password_file %s: %w", agent, path, err)
	}
	return pw, nil
}

// from reports whether src is inside the agent's cidrs; an agent without
// cidrs may connect from anywhere.
func (a *agentSpec) from(src netip.Addr) bool {
	if a.cidrs == nil {
		return true
	}
	for _, p := range a.cidrs {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// bySource is the agent whose cidrs most specifically contain src, or nil.
func (t *agentTable) bySource(src netip.Addr) *agentSpec {
	var best *agentSpec
	bestBits := -1
	for i := range t.list {
		a := &t.list[i]
		for _, p := range a.cidrs {
			if (p.Contains(src) || p.Contains(src.Unmap())) && p.Bits() > bestBits {
				best, bestBits = a, p.Bits()
			}
		}
	}
	return best
}

// Claim is what a connection says about who it is.
type Claim struct {
	// User and Password are from Proxy-Authorization Basic; User is ""
	// when none was sent.
	User, Password string
	// Src is the connection's source address.
	Src netip.Addr
}

// Agent names the agent behind a connection, or refuses the claim with
// an error the proxy answers with 407. A claim is proven, never taken on
// trust:
//
//   - A user naming an agent the policy defines must present its
//     password when it has one ("bad credentials for agent builder"), and
//     connect from inside its cidrs when it has them ("agent builder may
//     not connect from 10.1.2.3"). A plain password is compared in
//     constant time, hashed first so its length does not leak either; a
//     bcrypt or argon2id hash is verified once per load and password,
//     then answered from a cache (passwords.go).
//   - A user naming an agent the policy does not define is refused
//     ("unknown agent x") when the policy defines any agent, unless it
//     sets free_agent_names: true. A name that is an IP address is never
//     accepted as a free name: clients without a user are named by their
//     address, and no client may pose as another's.
//   - Without a user, the agent whose cidrs most specifically contain
//     Src; "" when none does (the proxy names the client by its address).
//     An agent with a password is not chosen by address alone: its
//     clients must present the password ("agent builder requires a
//     password"), or its rules would be open to, and escapable by, any
//     client that simply sends no user.
func (e *Engine) Agent(c Claim) (string, error) {
	src := c.Src.Unmap()
	t := &e.agents
	if c.User == "" {
		a := t.bySource(src)
		switch {
		case a == nil:
			return "", nil
		case a.hasPass:
			return "", fmt.Errorf("agent %s requires a password (Proxy-Authorization Basic)", a.name)
		}
		return a.name, nil
	}
	if !validName(c.User) {
		return "", fmt.Errorf("invalid agent name %q", c.User)
	}
	if strings.HasPrefix(c.User, AgentServerPrefix) || strings.HasPrefix(c.User, ProxyUserPrefix) {
		// Proven by the credentials agentg gave the server, never by
		// the policy (proxy/servers.go).
		return "", fmt.Errorf("agent %s is an MCP server's own identity, given only to the server agentg started", c.User)
	}
	a := t.byName[c.User]
	if a == nil {
		if !t.freeNames {
			return "", fmt.Errorf("unknown agent %s", c.User)
		}
		if _, err := netip.ParseAddr(c.User); err == nil {
			return "", fmt.Errorf("agent name %s is an address: only a client that sends no user is named by its address", c.User)
		}
		return c.User, nil
	}
	if a.hasPass {
		ok, err := t.pwCache.check(a.name, &a.pw, c.Password)
		if err != nil {
			return "", fmt.Errorf("agent %s: %w", a.name, err)
		}
		if !ok {
			return "", fmt.Errorf("bad credentials for agent %s", a.name)
		}
	}
	if !a.from(src) {
		return "", fmt.Errorf("agent %s may not connect from %s", a.name, src)
	}
	return a.name, nil
}

// agentPasswords warns, for agentg check, about a password kept in plain
// text: in the policy (anyone who can read the policy, its backups and
// its history can claim the agent) or in its password_file.
func (w *warner) agentPasswords() {
	e := w.e
	for _, a := range e.agents.list {
		if !a.hasPass || a.pw.kind != pwPlain {
			continue
		}
		where := fmt.Sprintf("%s:%d", e.file, a.pwLine)
		if a.pwFile == "" {
			w.add(where, "agent %s's password is written in plain text in the policy: anyone who can read the policy can claim %s; write the hash agentg passwd prints instead", a.name, a.name)
		} else {
			w.add(where, "agent %s's password_file %s holds a plain password: put the hash agentg passwd prints there instead", a.name, a.pwFile)
		}
	}
}
