package mcp

import (
	"context"
	"fmt"
	"net/url"

	"golang.org/x/time/rate"

	"strings"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// enforce.go is the only place the guard asks the policy anything:
// whether a call may run, whether a listed tool is shown, what a call and
// its answer are obliged to (redactions, rate limits, the pin check),
// whether MCP to a server the policy does not name may pass, and whether
// a governed server's upgrade may. A newcomer finds every decision here.

// enforcer asks the policy in force about one exchange's messages: the
// decision part of the guard, apart from the exchanges that read and
// answer them, so that a list's answer (rewrite.go) asks the very
// questions a call does.
type enforcer struct {
	g   *Guard
	x   *Exchange
	set rules.MCPSettings
}

// policy is ex's enforcer.
func (ex *exchange) policy() enforcer { return enforcer{g: ex.g, x: ex.x, set: ex.set} }

// callVerdict is the decision about one tools/call, with its obligations
// already applied where they decide (rate limit, pin).
type callVerdict struct {
	rules.ToolVerdict
	limited string // the rate limit that refused it, for the event
}

// decideCall asks the policy about one tools/call and applies the
// obligations that can refuse it: a changed pin under pinning: deny, and
// every rate limit that matched (one token each; the first empty bucket
// refuses, naming when to retry).
func (e enforcer) decideCall(m *wire.Message) callVerdict {
	x := e.x
	q := rules.ToolCall{Agent: x.Agent, Server: e.x.Server, Tool: m.Tool, Args: argLookup{m},
		Annotations: e.hints(m.Tool)}
	v := callVerdict{ToolVerdict: x.Engine.MCP().Tool(q)}
	if !v.Allowed() && v.Action != rules.Approve {
		return v
	}
	// A call to be held is checked like an allowed one first: what the
	// pin or a rate limit refuses is never put to a person.
	if e.set.Pinning.Action == rules.Deny {
		if p, ok := e.g.State.Pin(e.x.Server, m.Tool); ok && !p.Accepted {
			v.Decision = rules.Decision{Action: rules.Deny, Rule: "mcp:pinning",
				Reason: fmt.Sprintf("tool %s.%s changed its definition since it was first seen; accept it with: agentg mcp pins accept %s %s",
					e.x.Server, m.Tool, e.x.Server, m.Tool)}
			return v
		}
	}
	for _, rl := range v.RateLimits {
		key := rl.ID + "\x00" + bucketOf(rl.Per, x.Agent, e.x.Server, m.Tool)
		if ok, retry := e.g.Limits.Allow(key, rate.Limit(rl.Limit), rl.Burst); !ok && !rl.Report {
			v.Decision = rules.Decision{Action: rules.Deny, Rule: rl.ID,
				Reason: fmt.Sprintf("rate limit %s exceeded; retry after %s", rl.ID, retry.Round(time.Millisecond))}
			v.limited = fmt.Sprintf("%s (retry after %s)", rl.ID, retry.Round(time.Millisecond))
			return v
		}
	}
	return v
}

func bucketOf(per, agent, server, tool string) string {
	switch per {
	case "server":
		return server
	case "tool":
		return server + "." + tool
	}
	return agent
}

// visible decides whether a listed tool is shown to the client: by the
// same decision as a call to it without arguments (a deny that needs an
// argument to match leaves the tool listed, and decides the call), and
// not, under pinning: deny, while its definition is changed or could not
// be pinned.
func (e enforcer) visible(tool string, hints rules.ToolHints, pin store.PinResult) bool {
	x := e.x
	v := x.Engine.MCP().Tool(rules.ToolCall{Agent: x.Agent, Server: e.x.Server, Tool: tool, Annotations: hints})
	unpinned := pin == store.PinChanged || pin == store.PinUnchecked // changed, or could not be pinned at all
	return v.Allowed() && !(e.set.Pinning.Action == rules.Deny && unpinned)
}

// hints are the annotations the server last listed for tool (explicit
// true values only), so `when: annotation:` conditions see them.
func (e enforcer) hints(tool string) rules.ToolHints {
	return rules.ToolHints(e.g.State.ToolHints(e.x.Server, tool))
}

// argLookup lets the policy's argument conditions read a call's arguments
// through the codec, so both read the message the same way.
type argLookup struct{ m *wire.Message }

func (a argLookup) Arg(pointer string) (rules.ArgValue, bool) {
	v, ok := a.m.Arg(pointer)
	return rules.ArgValue{Kind: rules.ArgKind(v.Kind), Text: v.Text}, ok
}

var _ rules.ArgLookup = argLookup{}

// The redaction questions. Redaction covers every message in its
// direction (redact.go says what in a message it rewrites): a tools/call
// and the answer to it get the redactions that cover that tool, as the
// policy writes them; every other message, which may carry what any
// tool's could, gets every redaction of its direction that covers the
// agent (rules.MCPRules.MessageRedactions).

// messageRedactions are the redactions of a message not tied to one tool
// call: results is the server-to-client direction.
func messageRedactions(x *Exchange, results bool) []wire.Redaction {
	return scoped(x.Engine.MCP().MessageRedactions(x.Agent, results), !results)
}

// answerRedactions are the redactions of the server's answer to c.
func answerRedactions(x *Exchange, c *call) []wire.Redaction {
	switch {
	case c.tool != "" && (c.m.Method == "tools/call" || c.m.Method == "tasks/result"):
		return scoped(x.Engine.MCP().ResultRedactions(x.Agent, x.Server, c.tool), false)
	case c.m.Method == "tasks/result": // a task agentg did not see created: any tool's
		return scoped(x.Engine.MCP().AllResultRedactions(), false)
	}
	return messageRedactions(x, true)
}

// urlUnredactable reports a match of an arguments redaction in the path
// or query of the request line. Nothing there can be rewritten: the path
// is the endpoint the exchange was decided for, and a query is the
// server's to read (a legacy session id, a key), so a request whose URL
// carries what a redaction covers is refused, never sent with it. The
// URL is matched as sent and with its escapes undone.
func urlUnredactable(x *Exchange, u *url.URL) *wire.Unredactable {
	red := messageRedactions(x, false)
	if len(red) == 0 {
		return nil
	}
	texts := []string{u.EscapedPath(), u.RawQuery, u.Path}
	if q, err := url.QueryUnescape(u.RawQuery); err == nil {
		texts = append(texts, q)
	}
	for _, t := range texts {
		for _, r := range red {
			if matchesNonEmpty(r, t) {
				return &wire.Unredactable{Field: "request URL", Rule: r.ID}
			}
		}
	}
	return nil
}

func matchesNonEmpty(r wire.Redaction, t string) bool {
	for _, loc := range r.Pattern.FindAllStringIndex(t, -1) {
		if loc[0] < loc[1] {
			return true
		}
	}
	return false
}

// deniedMessage is the text of a refusal the client (and the model) reads.
func deniedMessage(v callVerdict, tool string) string {
	var b strings.Builder
	b.WriteString("agentg: tool ")
	b.WriteString(tool)
	b.WriteString(" denied by rule ")
	b.WriteString(v.Rule)
	if v.Reason != "" {
		b.WriteString(": ")
		b.WriteString(v.Reason)
	}
	return b.String()
}

// decideRead asks the policy about a prompts/get (by prompt name and
// arguments) or a resources/read (by URI); ok is false for any other
// method. Where the policy has no prompts (resources) rules, the answer is
// an allow as rule "mcp:method".
func (e enforcer) decideRead(m *wire.Message) (d rules.Decision, ok bool) {
	x := e.x
	switch m.Method {
	case "prompts/get":
		var args rules.ArgLookup
		if m.Args != nil {
			args = argLookup{m}
		}
		return x.Engine.MCP().Prompt(rules.PromptGet{Agent: x.Agent, Server: e.x.Server, Prompt: m.Prompt, Args: args}), true
	case "resources/read":
		return x.Engine.MCP().Resource(rules.ResourceRead{Agent: x.Agent, Server: e.x.Server, URI: m.URI}), true
	}
	return rules.Decision{}, false
}

// listedVisible decides whether an item of a prompts, resources or
// resource templates list is shown to the client: by the decision on a
// prompts/get of it without arguments, or a resources/read of its URI. A
// template is decided on its own text ("file:///etc/{name}"), so a deny
// whose glob covers the text hides it; reads through a template the list
// shows are still decided URI by URI.
func (e enforcer) listedVisible(kind wire.ListKind, key string) bool {
	x := e.x
	if kind == wire.ListPrompts {
		return x.Engine.MCP().Prompt(rules.PromptGet{Agent: x.Agent, Server: e.x.Server, Prompt: key}).Allowed()
	}
	return x.Engine.MCP().Resource(rules.ResourceRead{Agent: x.Agent, Server: e.x.Server, URI: key}).Allowed()
}

// deniedReadMessage is the text of a refused prompts/get or
// resources/read.
func deniedReadMessage(d rules.Decision, m *wire.Message) string {
	what := "prompt " + m.Prompt
	if m.Method == "resources/read" {
		what = "resource " + m.URI
	}
	msg := "agentg: " + what + " denied by rule " + d.Rule
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	return msg
}

// governedURL is urlUnredactable on a governed server's GET: on another
// host a GET is not known to be MCP until its stream says so.
func governedURL(x *Exchange, u *url.URL) *wire.Unredactable {
	if !x.Governed() {
		return nil
	}
	return urlUnredactable(x, u)
}

// unknownServer is the decision about MCP to a server no mcp.servers
// entry names (mcp.unknown_servers).
func unknownServer(set rules.MCPSettings) rules.Decision { return set.UnknownServers }

// upgradeAllowed reports whether a governed server's entry lets an HTTP
// upgrade through, unread (websocket: allow).
func upgradeAllowed(x *Exchange) bool { return x.Engine.MCP().WebSocket(x.Server) }

// pinChangeDenies reports whether a tool whose definition changed is
// denied (pinning: deny) rather than reported.
func pinChangeDenies(set rules.MCPSettings) bool { return set.Pinning.Action == rules.Deny }

// The leak question (issue 16). A client message may carry a credential
// value agentg holds, or an agentg:NAME placeholder; the guard asks the
// leak guard (creds.Guard) about the message as sent and JSON-unescaped,
// so a tools/call's arguments are read as the server will decode them
// (a \u0041 escape hides nothing). Each may go, a placeholder swapped for
// its value, only to a destination a binding of its secret matches (or
// that a runtime value was held for); otherwise the message is refused.
// The proxy leaves a POST's body to this question, and asks the same of
// the request's headers and URL itself.

// leakVerdict is the leak guard's answer about one message.
type leakVerdict struct {
	rules.Decision        // Deny when refused
	secret         string // the secret refused, for the event
	swap           map[string]string
}

func (e enforcer) leak(m *wire.Message) (v leakVerdict) {
	lg := e.g.Leaks
	if !lg.Active() {
		return v
	}
	hits := lg.ScanBytes(m.Raw, creds.FormRaw|creds.FormPercent|creds.FormJSON, nil)
	if len(hits) == 0 {
		return v
	}
	x := e.x
	path, _ := url.PathUnescape(x.Path)
	for _, h := range hits {
		ok := !h.Unknown && (x.Engine.Credentials().Binds(rules.CredentialUse{Secret: h.Name, Agent: x.Agent,
			Host: addr.Host{Name: x.Host, Port: x.Port}, Scheme: x.Scheme, Path: path, Server: x.Server}) || lg.Held().Allows(h.Name, x.Host))
		switch {
		case h.Unknown:
			v.Decision = rules.Decision{Action: rules.Deny, Rule: "builtin:placeholder",
				Reason: "placeholder agentg:" + h.Name + " names no secret agentg holds"}
		case !ok && h.Placeholder:
			v.Decision = rules.Decision{Action: rules.Deny, Rule: "builtin:placeholder",
				Reason: "placeholder agentg:" + h.Name + " in a message to " + x.Host + ", which no binding of secret " + h.Name + " names"}
		case !ok:
			v.Decision = rules.Decision{Action: rules.Deny, Rule: "builtin:credential-leak",
				Reason: "the value of secret " + h.Name + " in a message to " + x.Host + ", which no binding of it names"}
		case h.Placeholder && h.Form != creds.FormRaw:
			v.Decision = rules.Decision{Action: rules.Deny, Rule: "builtin:placeholder",
				Reason: "placeholder agentg:" + h.Name + " is escaped, and agentg swaps a placeholder only as written"}
		case h.Placeholder:
			if v.swap == nil {
				v.swap = map[string]string{}
			}
			sec, err := lg.Lookup(context.Background(), h.Name)
			if err != nil {
				v.Decision = rules.Decision{Action: rules.Deny, Rule: "builtin:placeholder",
					Reason: "the credential a placeholder stands for could not be read: " + err.Error()}
			} else {
				v.swap[h.Name] = sec.Reveal()
			}
		}
		if v.Action == rules.Deny {
			v.secret = h.Name
			return v
		}
	}
	return v
}
