package rules

import (
	"strings"
	"testing"
)

// argMap is an ArgLookup over values already resolved by pointer: the
// tests state what the codec would read, and rules parses no JSON.
type argMap map[string]ArgValue

func (m argMap) Arg(p string) (ArgValue, bool) { v, ok := m[p]; return v, ok }

func str(s string) ArgValue { return ArgValue{Kind: ArgString, Text: s} }

func TestMCPLoadErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"not a mapping", "mcp: [a]\n", `:1: mcp must be a mapping`},
		{"unknown key", "mcp:\n  defaults: allow\n", `:2: unknown mcp key "defaults"`},
		{"bad default", "mcp:\n  default: maybe\n", `:2: "maybe" is not one of allow, deny`},
		{"bad unknown_servers", "mcp:\n  unknown_servers: ignore\n", `:2: "ignore" is not one of allow, deny, report`},
		{"bad deny_as", "mcp:\n  deny_as: silence\n", `:2: "silence" is not one of error, result`},
		{"bad pinning", "mcp:\n  pinning: off\n", `:2: "off" is not one of alert, deny`},
		{"bad size", "mcp:\n  max_message: 4MB\n", `:2: bad size "4MB"`},
		{"size too small", "mcp:\n  max_message: 10\n", `:2: bad size "10"`},
		{"size too big", "mcp:\n  max_message: 2GiB\n", `:2: bad size "2GiB"`},
		{"duplicate key", "mcp:\n  default: allow\n  default: deny\n", `:3: duplicate key "default"`},

		{"servers not a list", "mcp:\n  servers: jira\n", `:2: mcp servers must be a list`},
		{"server without url", "mcp:\n  servers:\n    - name: jira\n", `:3: mcp server entry needs a name and a url`},
		{"server name with a dot", "mcp:\n  servers:\n    - name: a.b\n      url: a.test\n", `:3: bad mcp server name "a.b"`},
		{"server name with a star", "mcp:\n  servers:\n    - name: \"a*\"\n      url: a.test\n", `:3: bad mcp server name "a*"`},
		{"duplicate server", "mcp:\n  servers:\n    - name: a\n      url: a.test\n    - name: a\n      url: b.test\n", `:5: duplicate mcp server name "a" (also at line 3)`},
		{"same url", "mcp:\n  servers:\n    - name: a\n      url: a.test/v1\n    - name: b\n      url: A.test/v1\n", `:6: mcp server b has the same url as a (line 3)`},
		{"server url scheme", "mcp:\n  servers:\n    - name: a\n      url: https://a.test/mcp\n", `:4: mcp server url "https://a.test/mcp": write the host and path without a scheme`},
		{"server url port", "mcp:\n  servers:\n    - name: a\n      url: a.test:8443/mcp\n", `:4: port in "a.test:8443"`},
		{"server url ip", "mcp:\n  servers:\n    - name: a\n      url: 127.0.0.1/mcp\n", `:4: IP literal "127.0.0.1"`},
		{"server url bad glob", "mcp:\n  servers:\n    - name: a\n      url: a.test/a**\n", `:4: bad path glob`},
		{"server websocket", "mcp:\n  servers:\n    - name: a\n      url: a.test\n      websocket: yes\n", `:5: "yes" is not one of allow, refuse`},
		{"server unknown key", "mcp:\n  servers:\n    - name: a\n      url: a.test\n      agents: [x]\n", `:5: unknown mcp server key "agents"`},
		{"passthrough over a server", "passthrough:\n  - .corp.test\nmcp:\n  servers:\n    - name: a\n      url: mcp.corp.test/v1\n",
			`:2: passthrough entry covers hosts of mcp server a (`},
		{"passthrough under a server", "mcp:\n  servers:\n    - name: a\n      url: .corp.test\npassthrough:\n  - host: x.corp.test\n    agents: [ci]\n",
			`:6: passthrough entry covers hosts of mcp server a (`},

		{"tools not a list", "mcp:\n  tools: x\n", `:2: mcp tools must be a list of rules`},
		{"tool without action", "mcp:\n  tools:\n    - id: x\n", `:3: rule without allow, deny or approve`},
		{"tool without dot", "mcp:\n  tools:\n    - deny: jira\n", `:3: bad tool pattern "jira": no dot`},
		{"tool empty server", "mcp:\n  tools:\n    - deny: .x\n", `:3: bad tool pattern ".x": empty server name`},
		{"tool empty tool", "mcp:\n  tools:\n    - deny: \"jira.\"\n", `:3: bad tool pattern "jira.": empty tool name`},
		{"tool bad server", "mcp:\n  tools:\n    - deny: \"ji ra.x\"\n", `:3: bad tool pattern "ji ra.x": a server name is`},
		{"tool space", "mcp:\n  tools:\n    - deny: \"jira.a b\"\n", `:3: bad tool pattern "jira.a b": space`},
		{"tool second in list", "mcp:\n  tools:\n    - deny: [jira.a, nodot]\n", `:3: bad tool pattern "nodot"`},
		{"tool ports", "mcp:\n  tools:\n    - deny: jira.a\n      ports: [443]\n", `:4: ports do not apply to tool rules`},
		{"tool important allow", "mcp:\n  tools:\n    - allow: jira.a\n      important: true\n", `:3: important applies to deny rules only`},
		{"tool unknown key", "mcp:\n  tools:\n    - deny: jira.a\n      if: x\n", `:4: unknown tool rule key "if" (want allow, deny or approve, agents, mode, important, id, when, timeout, via)`},
		{"duplicate id across sections", "hosts:\n  - allow: a.test\n    id: x\nmcp:\n  tools:\n    - deny: jira.a\n      id: x\n", `:6: duplicate rule id "x" (also at `},

		{"when not a list", "mcp:\n  tools:\n    - deny: a.b\n      when: {arg: /x, exists: true}\n", `:4: when must be a list of conditions`},
		{"when no arg", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - equals: x\n", `:5: condition without arg or annotation`},
		{"when no test", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /x\n", `:5: arg condition without a test`},
		{"when two tests", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /x\n          equals: a\n          glob: b\n", `:7: a condition has one test, not both equals and glob`},
		{"when bad pointer", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: command\n          exists: true\n", `:5: bad JSON Pointer "command"`},
		{"when bad escape", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /a~2\n          exists: true\n", `:5: bad JSON Pointer "/a~2"`},
		{"when bad regexp", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /x\n          matches: \"(\"\n", `:6: bad regexp "("`},
		{"when bad exists", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /x\n          exists: yes\n", `:6: expected true or false`},
		{"when equals list", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /x\n          equals: [a]\n", `:6: equals takes a single value`},
		{"when equals nan", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /x\n          equals: .nan\n", `:6: equals: ".nan" is not a finite number`},
		{"when unknown key", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - arg: /x\n          contains: a\n", `:6: unknown condition key "contains"`},
		{"when unknown annotation", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - annotation: dangerHint\n", `:5: unknown annotation "dangerHint"`},
		{"when annotation with a test", "mcp:\n  tools:\n    - deny: a.b\n      when:\n        - annotation: readOnlyHint\n          equals: true\n", `:5: an annotation condition has no arg and no test`},

		{"redact not a list", "mcp:\n  redact: x\n", `:2: mcp redact must be a list`},
		{"redact no pattern", "mcp:\n  redact:\n    - id: x\n", `:3: redact entry without a pattern`},
		{"redact bad regexp", "mcp:\n  redact:\n    - pattern: \"[a\"\n", `:3: bad regexp "[a"`},
		{"redact empty match", "mcp:\n  redact:\n    - pattern: \"a*\"\n", `:3: regexp "a*" can match the empty string`},
		{"redact anchor", "mcp:\n  redact:\n    - pattern: \"^|x\"\n", `:3: regexp "^|x" can match the empty string`},
		{"redact bad scope", "mcp:\n  redact:\n    - pattern: x\n      in: [headers]\n", `:4: redact in "headers"`},
		{"redact bad tools", "mcp:\n  redact:\n    - pattern: x\n      tools: nodot\n", `:4: bad tool pattern "nodot"`},
		{"redact mode", "mcp:\n  redact:\n    - pattern: x\n      mode: report\n", `:4: unknown redact key "mode"`},
		{"redact duplicate id", "mcp:\n  tools:\n    - deny: a.b\n      id: k\n  redact:\n    - pattern: x\n      id: k\n", `:6: duplicate rule id "k"`},

		{"rate no limit", "mcp:\n  rate_limits:\n    - tools: a.b\n", `:3: rate limit without a limit`},
		{"rate bad unit", "mcp:\n  rate_limits:\n    - limit: 30/d\n", `:3: bad limit "30/d"`},
		{"rate zero", "mcp:\n  rate_limits:\n    - limit: 0/s\n", `:3: bad limit "0/s"`},
		{"rate no slash", "mcp:\n  rate_limits:\n    - limit: 30\n", `:3: bad limit "30"`},
		{"rate bad per", "mcp:\n  rate_limits:\n    - limit: 1/s\n      per: session\n", `:4: "session" is not one of agent, server, tool`},
		{"rate bad burst", "mcp:\n  rate_limits:\n    - limit: 1/s\n      burst: 0\n", `:4: bad burst "0"`},
		{"rate important", "mcp:\n  rate_limits:\n    - limit: 1/s\n      important: true\n", `:4: unknown rate_limits key "important"`},
	})
}

func TestMCPSettings(t *testing.T) {
	path := writePolicy(t, "default: allow\n", nil)
	e := mustLoad(t, "default: allow\n", nil)
	s := e.MCP()
	if s.Defined || s.Default.Action != Allow || s.Default.Rule != "mcp:default" || s.UnknownServers.Action != Allow ||
		s.DenyAs != DenyAsError || s.MaxMessage != 4<<20 || s.Pinning.Action != Allow || s.Pinning.Rule != "mcp:pinning" {
		t.Errorf("no section: %+v", s)
	}
	if v := e.MCP().Tool(ToolCall{Server: "x", Tool: "y"}); v.Action != Allow || v.Rule != "mcp:default" || v.Redactions != nil || v.RateLimits != nil {
		t.Errorf("no section: Tool = %+v", v)
	}
	_ = path

	e = mustLoad(t, `mode: report
mcp:
  default: deny
  unknown_servers: deny
  deny_as: result
  max_message: 512KiB
  pinning: deny
`, nil)
	s = e.MCP()
	if !s.Defined || s.Default.Action != Deny || !s.Default.Report || s.UnknownServers.Action != Deny || !s.UnknownServers.Report ||
		s.DenyAs != DenyAsResult || s.DenyAs.String() != "result" || s.MaxMessage != 512<<10 || s.Pinning.Action != Deny || !s.Pinning.Report {
		t.Errorf("report mode section: %+v", s)
	}

	for _, tt := range []struct {
		v       string
		action  Action
		report  bool
		allowed bool
	}{
		{"allow", Allow, false, true},
		{"deny", Deny, false, false},
		{"report", Deny, true, true},
	} {
		s := mustLoad(t, "mcp:\n  unknown_servers: "+tt.v+"\n  max_message: 2048\n", nil).MCP()
		u := s.UnknownServers
		if u.Action != tt.action || u.Report != tt.report || u.Allowed() != tt.allowed || u.Rule != "mcp:unknown_servers" || s.MaxMessage != 2048 {
			t.Errorf("unknown_servers: %s: %+v", tt.v, u)
		}
	}
	if s := mustLoad(t, "mcp:\n", nil).MCP(); s.Defined {
		t.Errorf("empty mcp: counts as a section: %+v", s)
	}
}

func TestToolPrecedence(t *testing.T) {
	path := writePolicy(t, `agents:
  - name: builder
    password: x
  - name: ci
    password: y
mcp:
  servers:
    - name: jira
      url: mcp.atlassian.test/v1/**
    - name: gomcp
      url: go.test
    - name: shell
      url: shell.test
  tools:
    - deny: "jira.delete_*"
      id: no-jira-delete
    - allow: "jira.*"
      agents: [builder]
    - allow: jira.delete_draft
    - deny: "*.delete_project"
    - allow: "gomcp.a.*"
    - deny: gomcp.a.b
    - deny: "gomcp.a.*"
    - deny: "shell.*"
      important: true
      id: no-shell
    - allow: shell.ls
    - deny: "*"
      agents: [ci]
      mode: report
`, nil)
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(n string) string { return path + ":" + n }
	tests := []struct {
		agent, server, tool string
		action              Action
		report              bool
		rule                string
	}{
		{"builder", "jira", "create_issue", Allow, false, at("17")},
		{"other", "jira", "create_issue", Allow, false, "mcp:default"},        // the allow is builder's
		{"builder", "jira", "delete_issue", Deny, false, "no-jira-delete"},    // longer prefix beats "jira.*"
		{"builder", "jira", "DELETE_issue", Deny, false, "no-jira-delete"},    // a deny ignores case
		{"builder", "jira", "delete_draft", Allow, false, at("19")},           // exact beats glob
		{"builder", "jira", "Delete_Draft", Deny, false, "no-jira-delete"},    // the exact allow is as sent
		{"builder", "jira", "delete_project", Deny, false, "no-jira-delete"},  // jira.delete_* beats *.delete_project
		{"builder", "other", "delete_project", Deny, false, at("20")},         // more literal text beats "*" (ci only anyway)
		{"", "", "delete_project", Deny, false, at("20")},                     // unknown server: only server globs
		{"", "", "create_issue", Allow, false, "mcp:default"},                 //
		{"", "gomcp", "a.b", Deny, false, at("22")},                           // tool names with dots; exact
		{"", "gomcp", "a.c", Deny, false, at("23")},                           // tie between allow and deny: deny
		{"", "shell", "ls", Deny, false, "no-shell"},                          // important beats the exact allow
		{"", "shell", "rm", Deny, false, "no-shell"},                          //
		{"ci", "jira", "create_issue", Deny, true, at("28")},                  // report mode
		{"ci", "jira", "delete_x", Deny, false, "no-jira-delete"},             // enforce beats the report catch-all
		{"ci", "shell", "ls", Deny, false, "no-shell"},                        //
		{"builder", "jira.delete_x", "y", Allow, false, "mcp:default"},        // a server name is exact
		{"builder", "jir", "a.create_issue", Allow, false, "mcp:default"},     //
		{"builder", "JIRA", "create_issue", Allow, false, "mcp:default"},      // server names are exact
		{"builder", "jira", "create_issue.sub", Allow, false, at("17")},       //
		{"builder", "jira", "", Allow, false, at("17")},                       // "*" matches the empty tool
		{"ci", "anything", "at_all", Deny, true, at("28")},                    //
		{"builder", "gomcp", "A.B", Deny, false, at("22")},                    // deny exact, loosely
		{"builder", "gomcp", "a.B", Deny, false, at("22")},                    //
		{"builder", "gomcp", "ax", Allow, false, "mcp:default"},               // "gomcp.a.*" needs the dot
		{"builder", "shell", "LS", Deny, false, "no-shell"},                   //
		{"builder", "jira", "delete_draft2", Deny, false, "no-jira-delete"},   //
		{"builder", "jira", "delete_", Deny, false, "no-jira-delete"},         //
		{"builder", "jira", "deletex", Allow, false, at("17")},                //
		{"builder", "jira", "delete_project ", Deny, false, "no-jira-delete"}, //
		{"builder", "jira", "x.delete_project", Allow, false, at("17")},       //
		{"builder", "jiraa", "delete_project", Deny, false, at("20")},         //
		{"builder", "", "", Allow, false, "mcp:default"},                      //
		{"builder", "other", "x.delete_project", Allow, false, "mcp:default"}, // "*.delete_project" is the whole tool name
		{"builder", "other", "delete_projects", Allow, false, "mcp:default"},  //
		{"builder", "other", "DELETE_PROJECT", Deny, false, at("20")},         //
		{"builder", "shell", "", Deny, false, "no-shell"},                     //
		{"builder", "gomcp", "a.", Deny, false, at("23")},                     // "gomcp.a.*" allowed first, denied later: a tie, deny wins
	}
	for _, tt := range tests {
		v := e.MCP().Tool(ToolCall{Agent: tt.agent, Server: tt.server, Tool: tt.tool})
		if v.Action != tt.action || v.Report != tt.report || v.Rule != tt.rule {
			t.Errorf("Tool(%q, %s.%s) = %v report=%v %q (%s); want %v report=%v %q", tt.agent, tt.server, tt.tool, v.Action, v.Report, v.Rule, v.Reason, tt.action, tt.report, tt.rule)
		}
	}
	v := e.MCP().Tool(ToolCall{Agent: "builder", Server: "jira", Tool: "delete_issue"})
	if v.Source != at("15") || v.Reason != "tool call denied by rule no-jira-delete (jira.delete_*)" {
		t.Errorf("decision: %+v", v.Decision)
	}
	if s := e.Stats(); s.MCPServers != 3 || s.ToolRules != 10 {
		t.Errorf("stats: %+v", s)
	}
}

func TestToolConditions(t *testing.T) {
	e := mustLoad(t, `mcp:
  default: allow
  tools:
    - deny: shell.run
      id: rm
      when:
        - arg: /command
          matches: 'rm\s+-rf'
    - deny: shell.run
      id: sudo-as-root
      when:
        - arg: /argv/0
          equals: sudo
        - arg: /user
          equals: root
    - deny: "fs.*"
      id: no-force
      when:
        - arg: /force
          equals: true
    - deny: "fs.*"
      id: big
      when:
        - arg: /count
          equals: 100
    - deny: "fs.*"
      id: null-owner
      when:
        - arg: /owner
          equals: null
    - deny: "fs.*"
      id: etc
      when:
        - arg: /path
          glob: "/etc/*"
    - deny: "fs.*"
      id: no-dry-run
      when:
        - arg: /dry_run
          exists: false
    - deny: "fs.*"
      id: has-a~b
      when:
        - arg: /a~1b
          exists: true
    - deny: "*"
      id: destructive
      when:
        - annotation: destructiveHint
    - allow: "db.*"
      id: read-only-db
      when:
        - annotation: readOnlyHint
    - deny: "d*.*"
      id: db
    - deny: "text.*"
      id: text-equals
      when:
        - arg: /n
          equals: "5"
`, nil)
	tests := []struct {
		name   string
		server string
		tool   string
		args   ArgLookup
		hints  ToolHints
		want   string
	}{
		{"rm -rf", "shell", "run", argMap{"/command": str("rm  -rf /")}, 0, "rm"},
		{"rm in a container sees its JSON text", "shell", "run", argMap{"/command": {Kind: ArgArray, Text: `["rm -rf /"]`}}, 0, "rm"},
		{"ls", "shell", "run", argMap{"/command": str("ls -l")}, 0, "mcp:default"},
		{"no arguments", "shell", "run", nil, 0, "mcp:default"},
		{"missing pointer", "shell", "run", argMap{"/cmd": str("rm -rf /")}, 0, "mcp:default"},
		{"all conditions hold", "shell", "run", argMap{"/argv/0": str("sudo"), "/user": str("root")}, 0, "sudo-as-root"},
		{"one condition fails", "shell", "run", argMap{"/argv/0": str("sudo"), "/user": str("bob")}, 0, "mcp:default"},
		{"one condition missing", "shell", "run", argMap{"/argv/0": str("sudo")}, 0, "mcp:default"},
		{"equals is case sensitive", "shell", "run", argMap{"/argv/0": str("SUDO"), "/user": str("root")}, 0, "mcp:default"},
		{"bool", "fs", "rm", argMap{"/force": {Kind: ArgBool, Text: "true"}, "/dry_run": {Kind: ArgBool, Text: "false"}}, 0, "no-force"},
		{"bool text as a string", "fs", "rm", argMap{"/force": str("true"), "/dry_run": str("x")}, 0, "mcp:default"},
		{"number", "fs", "rm", argMap{"/count": {Kind: ArgNumber, Text: "1e2"}, "/dry_run": str("x")}, 0, "big"},
		{"number as a string", "fs", "rm", argMap{"/count": str("100"), "/dry_run": str("x")}, 0, "mcp:default"},
		{"other number", "fs", "rm", argMap{"/count": {Kind: ArgNumber, Text: "100.5"}, "/dry_run": str("x")}, 0, "mcp:default"},
		{"null", "fs", "rm", argMap{"/owner": {Kind: ArgNull, Text: "null"}, "/dry_run": str("x")}, 0, "null-owner"},
		{"glob", "fs", "read", argMap{"/path": str("/etc/passwd"), "/dry_run": str("x")}, 0, "etc"},
		{"glob within", "fs", "read", argMap{"/path": str("/etc/ssh/config"), "/dry_run": str("x")}, 0, "etc"}, // '*' is any run
		{"glob miss", "fs", "read", argMap{"/path": str("/home/etc/x"), "/dry_run": str("x")}, 0, "mcp:default"},
		{"exists false", "fs", "read", argMap{}, 0, "no-dry-run"},
		{"exists false, no arguments", "fs", "read", nil, 0, "no-dry-run"},
		{"exists true", "fs", "read", argMap{"/dry_run": str("x"), "/a~1b": {Kind: ArgNull, Text: "null"}}, 0, "has-a~b"},
		{"annotation", "any", "thing", nil, HintDestructive, "destructive"},
		{"annotation among others", "any", "thing", nil, HintDestructive | HintOpenWorld, "destructive"},
		{"other annotation", "any", "thing", nil, HintOpenWorld | HintIdempotent, "mcp:default"},
		{"read only opens db", "db", "query", nil, HintReadOnly, "read-only-db"},
		{"db without the hint", "db", "query", nil, 0, "db"},
		{"the allow is more specific than the deny, not its condition", "dz", "query", nil, HintReadOnly, "db"},
		{"string equals a quoted number", "text", "x", argMap{"/n": str("5")}, 0, "text-equals"},
		{"number does not equal a quoted number", "text", "x", argMap{"/n": {Kind: ArgNumber, Text: "5"}}, 0, "mcp:default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.MCP().Tool(ToolCall{Server: tt.server, Tool: tt.tool, Args: tt.args, Annotations: tt.hints})
			if v.Rule != tt.want && !strings.HasSuffix(v.Rule, "/"+tt.want) {
				t.Errorf("rule %q (%s), want %q", v.Rule, v.Reason, tt.want)
			}
		})
	}
	v := e.MCP().Tool(ToolCall{Server: "shell", Tool: "run", Args: argMap{"/argv/0": str("sudo"), "/user": str("root")}})
	if want := `tool call denied by rule sudo-as-root (shell.run when arg /argv/0 equals "sudo" and arg /user equals "root")`; v.Reason != want {
		t.Errorf("reason %q, want %q", v.Reason, want)
	}
}

func TestToolNameTooLong(t *testing.T) {
	e := mustLoad(t, `mode: report
mcp:
  tools:
    - allow: "*"
  redact:
    - pattern: x
      tools: a.b
      in: [arguments]
    - pattern: y
      tools: a.b
      in: [results]
  rate_limits:
    - limit: 1/s
`, nil)
	long := strings.Repeat("a", MaxToolName+1)
	v := e.MCP().Tool(ToolCall{Server: "a", Tool: long})
	if v.Action != Deny || !v.Report || v.Rule != "builtin:tool-name" || len(v.Redactions) != 1 || v.RateLimits != nil {
		t.Errorf("long name: %+v", v)
	}
	if r := e.MCP().ResultRedactions("", "a", long); len(r) != 1 || r[0].Pattern.String() != "y" {
		t.Errorf("long name: result redactions %+v", r)
	}
	if v := e.MCP().Tool(ToolCall{Server: "a", Tool: long[1:]}); v.Action != Allow {
		t.Errorf("name of MaxToolName bytes: %+v", v)
	}
}

func TestHints(t *testing.T) {
	for _, n := range []string{"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} {
		if HintByName(n) == 0 {
			t.Errorf("HintByName(%q) = 0", n)
		}
	}
	if HintByName("title") != 0 || HintByName("DestructiveHint") != 0 {
		t.Error("HintByName accepts a key that is not a hint")
	}
	var none ToolHints
	if none.Has(0) || none.Has(HintReadOnly) || !(HintReadOnly | HintDestructive).Has(HintDestructive) {
		t.Error("Has")
	}
}

// countingArgs counts lookups, to show a rule that cannot win is not
// evaluated.
type countingArgs struct{ n int }

func (c *countingArgs) Arg(string) (ArgValue, bool) { c.n++; return str("x"), true }

func TestToolConditionsSkipped(t *testing.T) {
	e := mustLoad(t, `mcp:
  tools:
    - deny: shell.run
    - deny: "shell.*"
      when:
        - arg: /a
          exists: true
`, nil)
	var c countingArgs
	if v := e.MCP().Tool(ToolCall{Server: "shell", Tool: "run", Args: &c}); v.Action != Deny || c.n != 0 {
		t.Errorf("%+v after %d lookups; want the exact deny and no lookup", v.Decision, c.n)
	}
}

// FuzzTool feeds hostile names and paths to the MCP questions: they must
// answer Allow or Deny, never panic, and agree with themselves.
func FuzzTool(f *testing.F) {
	e, err := Parse("fuzz.yaml", []byte(mcpBenchPolicy()))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "s1", "shell", "DELETE_x", "drop_\xff", "a.b.c", "\u212a", strings.Repeat("*", 300)} {
		f.Add(s, s, "/v1/"+s)
	}
	h := host(f, "mcp1.bench.test", 443)
	f.Fuzz(func(t *testing.T, server, tool, path string) {
		v := e.MCP().Tool(ToolCall{Server: server, Tool: tool, Args: argMap{"/command": str(tool)}, Annotations: ToolHints(len(tool))})
		if v.Action != Allow && v.Action != Deny {
			t.Fatalf("Tool(%q, %q) = %v", server, tool, v.Action)
		}
		if again := e.MCP().Tool(ToolCall{Server: server, Tool: tool, Args: argMap{"/command": str(tool)}, Annotations: ToolHints(len(tool))}); again.Decision != v.Decision {
			t.Fatalf("Tool(%q, %q) changed its mind", server, tool)
		}
		e.MCP().ResultRedactions("", server, tool)
		e.MCP().Server(h, path)
	})
}
