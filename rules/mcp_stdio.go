package rules

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

// Servers agentg starts itself (issue 17): an mcp servers entry may name
// a command instead of a url.
//
//	mcp:
//	  servers:
//	    - name: files
//	      command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv]
//	      dir: /srv                      # optional working directory
//	      env:                           # the child's whole environment, with
//	        LANG: C.UTF-8                #   HTTPS_PROXY/HTTP_PROXY added
//	        API_TOKEN: {secret: files}   # a credentials secret, by name
//	      egress: [api.example.com, "*.cdn.example.com"]
//
// The child's environment holds only what env lists, plus HTTPS_PROXY and
// HTTP_PROXY (and their lower-case twins) pointing at agentg's explicit
// listener with proxy credentials of its own (agent "server:NAME"), so
// its egress meets the floor under its own name. egress, when present,
// lists the only hosts that identity may reach: everything else is
// denied with rule "mcp:egress NAME" (an empty list denies all). Without
// egress the host rules decide as for any agent.

// StdioServer is one compiled command servers entry.
type StdioServer struct {
	Name    string
	Command []string // argv; Command[0] is looked up on agentg's PATH
	Dir     string   // "" for agentg's own working directory
	Env     []EnvVar // sorted by name
	// Egress is the egress list as written; HasEgress tells an empty
	// list (nothing may be reached) from none (the host rules decide).
	Egress    []string
	HasEgress bool
	Source    string // "<file>:<line>"
	egress    []pattern
}

// EnvVar is one variable of a child's environment: a value written in the
// policy, or the name of a credentials secret (resolved when the child
// starts, through the credentials store; never printed).
type EnvVar struct {
	Name   string
	Value  string
	Secret string
}

// AgentServerPrefix starts the agent name a server agentg started uses
// on the floor: "server:NAME". No agents entry can have it (agent names
// may not contain ':' under free names either: see ServerAgent).
const AgentServerPrefix = "server:"

// ProxyUserPrefix starts the proxy user (Basic) a server agentg started
// proves its identity with: "server.NAME" (a Basic user cannot hold a
// ':'). It maps to the agent "server:NAME"; no agents entry may start
// with either prefix.
const ProxyUserPrefix = "server."

// ServerOfProxyUser is the server a proxy user claims to be, if it
// claims to be one.
func ServerOfProxyUser(user string) (string, bool) { return strings.CutPrefix(user, ProxyUserPrefix) }

// ServerAgent is the agent name of server's own egress.
func ServerAgent(server string) string { return AgentServerPrefix + server }

// ServerOfAgent is the server whose egress agent is, if it is one's.
func ServerOfAgent(agent string) (string, bool) {
	return strings.CutPrefix(agent, AgentServerPrefix)
}

// stdioSpec is what a servers entry adds when it has a command.
type stdioSpec struct {
	command   []string
	dir       string
	env       []envSpec
	egress    []string
	egressPat []pattern
	hasEgress bool
	commandAt *yaml.Node
}

type envSpec struct {
	v    EnvVar
	node *yaml.Node
}

// stdioKey parses one of a servers entry's command keys into s; ok is
// false for a key that is not one of them.
func (p *mcpParser) stdioKey(s *serverSpec, k, v *yaml.Node) (ok bool, err error) {
	if s.stdio == nil {
		s.stdio = &stdioSpec{}
	}
	st := s.stdio
	switch k.Value {
	case "command":
		st.commandAt = v
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			return true, p.ps.errf(v, "command must be a non-empty list: [PROGRAM, ARGS...]")
		}
		for _, a := range v.Content {
			if a.Kind != yaml.ScalarNode {
				return true, p.ps.errf(a, "command: every item must be a single string")
			}
			if strings.IndexByte(a.Value, 0) >= 0 {
				return true, p.ps.errf(a, "command: a NUL byte in an argument")
			}
			st.command = append(st.command, a.Value)
		}
		if st.command[0] == "" {
			return true, p.ps.errf(v.Content[0], "command: empty program name")
		}
	case "dir":
		if st.dir, err = p.ps.scalar(v); err == nil && st.dir == "" {
			err = p.ps.errf(v, "empty dir (leave the key out for agentg's working directory)")
		}
	case "env":
		err = p.ps.eachKey(v, func(ek, ev *yaml.Node) error {
			if !validEnvName(ek.Value) {
				return p.ps.errf(ek, "bad environment variable name %q (letters, digits and '_', not starting with a digit)", ek.Value)
			}
			if isProxyVar(ek.Value) {
				return p.ps.errf(ek, "env: %s is agentg's to set (the child's egress goes through agentg under its own name)", ek.Value)
			}
			e := envSpec{v: EnvVar{Name: ek.Value}, node: ev}
			switch ev.Kind {
			case yaml.ScalarNode:
				e.v.Value = ev.Value
			case yaml.MappingNode:
				if err := p.ps.eachKey(ev, func(sk, sv *yaml.Node) error {
					if sk.Value != "secret" {
						return p.ps.errf(sk, "unknown env value key %q (want a string, or {secret: NAME})", sk.Value)
					}
					var err error
					if e.v.Secret, err = p.ps.scalar(sv); err == nil && e.v.Secret == "" {
						err = p.ps.errf(sv, "empty secret name")
					}
					return err
				}); err != nil {
					return err
				}
				if e.v.Secret == "" {
					return p.ps.errf(ev, "env %s: want a string, or {secret: NAME}", ek.Value)
				}
			default:
				return p.ps.errf(ev, "env %s: want a string, or {secret: NAME}", ek.Value)
			}
			st.env = append(st.env, e)
			return nil
		})
	case "egress":
		st.hasEgress = true
		if v.Kind != yaml.SequenceNode {
			return true, p.ps.errf(v, "egress must be a list of host patterns ([] for none)")
		}
		for _, h := range v.Content {
			if h.Kind != yaml.ScalarNode {
				return true, p.ps.errf(h, "egress: expected a host pattern")
			}
			pt, err := parsePattern(h.Value)
			if err != nil {
				return true, p.ps.errf(h, "egress: %v", err)
			}
			st.egress = append(st.egress, h.Value)
			st.egressPat = append(st.egressPat, pt)
		}
	default:
		return false, nil
	}
	return true, err
}

// checkStdio checks an entry as a whole: a url or a command, not both;
// the stdio keys only with a command.
func (p *mcpParser) checkStdio(it *yaml.Node, s *serverSpec, hasURL bool) error {
	st := s.stdio
	if st == nil || st.commandAt == nil {
		if st != nil && (st.dir != "" || st.env != nil || st.hasEgress) {
			return p.ps.errf(it, "mcp server %s: dir, env and egress apply to a server agentg starts (command:), not to one at a url", s.name)
		}
		s.stdio = nil
		if !hasURL && s.gw.endpoint == "" {
			return p.ps.errf(it, "mcp server entry needs a name and a url (or an endpoint, for the gateway, or a command)")
		}
		return nil
	}
	if hasURL || s.gw.endpoint != "" {
		return p.ps.errf(it, "mcp server %s has a command and a url or endpoint: agentg starts it, or reaches it, not both", s.name)
	}
	return nil
}

// compileStdio adds a command entry to the servers table. A secret an
// env value names must be in the credentials section.
func (c *compiler) compileStdio(s serverSpec) error {
	t := &c.e.mcp.servers
	st := s.stdio
	srv := StdioServer{Name: s.name, Command: slices.Clone(st.command), Dir: st.dir,
		Egress: st.egress, HasEgress: st.hasEgress, egress: st.egressPat,
		Source: fmt.Sprintf("%s:%d", c.pol.file, s.line)}
	if srv.Dir != "" && !filepath.IsAbs(srv.Dir) {
		srv.Dir = filepath.Join(c.dir, srv.Dir)
	}
	cs, _ := c.pol.specs.get("credentials").(*credentialsSpec)
	for _, e := range st.env {
		if e.v.Secret != "" {
			if _, ok := cs.secretNamed(e.v.Secret); !ok {
				return fmt.Errorf("load policy %s:%d: env %s: no secret %q in the credentials section", c.pol.file, e.node.Line, e.v.Name, e.v.Secret)
			}
		}
		srv.Env = append(srv.Env, e.v)
	}
	sort.Slice(srv.Env, func(i, j int) bool { return srv.Env[i].Name < srv.Env[j].Name })
	if t.stdio == nil {
		t.stdio = map[string]*StdioServer{}
	}
	t.stdio[s.name] = &srv
	return nil
}

// secretNamed is the secret name in cs (nil: no credentials section).
func (cs *credentialsSpec) secretNamed(name string) (secretSpec, bool) {
	if cs == nil {
		return secretSpec{}, false
	}
	s, ok := cs.secrets[name]
	return s, ok
}

// StdioServers lists the command servers entries in policy order.
func (m *MCPRules) StdioServers() []StdioServer {
	var out []StdioServer
	for _, b := range m.servers.list {
		if s := m.servers.stdio[b.Name]; s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// StdioServer is the command entry named server, if there is one.
func (m *MCPRules) StdioServer(server string) (StdioServer, bool) {
	s := m.servers.stdio[server]
	if s == nil {
		return StdioServer{}, false
	}
	return *s, true
}

// Egress decides whether the egress of agent may reach h, when agent is
// a command server's own identity whose entry has an egress list: d is
// the deny (rule "mcp:egress NAME") when h is not on it; restricted is
// false when no egress list applies to agent (the host rules decide
// alone). IP literals are never on a list: a list names hosts.
func (e *Engine) Egress(agent string, h addr.Host) (d Decision, restricted bool) {
	server, ok := ServerOfAgent(agent)
	if !ok {
		return Decision{}, false
	}
	s := e.mcp.servers.stdio[server]
	if s == nil || !s.HasEgress {
		return Decision{}, false
	}
	if !h.IsIP() {
		for _, pt := range s.egress {
			if pt.covers(h.Name) {
				return Decision{Action: Allow, Rule: "mcp:egress " + server, Source: s.Source}, true
			}
		}
	}
	return Decision{Action: Deny, Rule: "mcp:egress " + server, Source: s.Source,
		Reason: "mcp server " + server + " may reach only its egress list (" + strings.Join(s.Egress, ", ") + ")"}, true
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isProxyVar(s string) bool {
	switch strings.ToUpper(s) {
	case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
		return true
	}
	return false
}

// ValidServerName reports whether s can name an MCP server in the policy
// (`agentg wrap --server` checks its name with it).
func ValidServerName(s string) bool { return validServerName(s) }
