package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "[--agent NAME] [--port N] POLICY [HOST[:PORT]...] [--tool SERVER.TOOL [--args JSON] [--hints HINT,...]] [--prompt SERVER.PROMPT] [--resource SERVER=URI] [--dns NAME[/TYPE]] [--request \"METHOD URL\"]", stderr)
	agent := fs.String("agent", "", "decide as this agent")
	port := fs.Uint("port", 443, "port for hosts given without one")
	var tools listFlag
	fs.Var(&tools, "tool", "explain the decision for a tool call SERVER.TOOL (the server's policy name; \".TOOL\" for a host no mcp servers entry binds); may be repeated")
	var prompts, resources, requests listFlag
	fs.Var(&requests, "request", "explain the http rules' decision for a request \"METHOD URL\" (\"POST https://api.example/deploy/1\"); may be repeated")
	fs.Var(&prompts, "prompt", "explain the decision for a prompts/get SERVER.PROMPT (with --args as its arguments); may be repeated")
	fs.Var(&resources, "resource", "explain the decision for a resources/read SERVER=URI (\"=URI\" for a host no mcp servers entry binds); may be repeated")
	var names listFlag
	fs.Var(&names, "dns", "explain what the DNS filter answers to NAME[/TYPE] (type A when none): its guards, the name's decision and the block answer; may be repeated")
	argsJSON := fs.String("args", "", "the tool call's arguments, a JSON object (read with the strict codec the proxy reads calls with)")
	strict := fs.Bool("strict", false, "exit 1 when the policy has warnings (for CI); without it warnings are printed and the exit status is 0")
	hints := fs.String("hints", "", "annotation hints the server sets true for the tool, comma-separated (destructiveHint, readOnlyHint, idempotentHint, openWorldHint)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || *port == 0 || *port > 65535 || len(tools) == 0 && len(prompts) == 0 && *argsJSON != "" || len(tools) == 0 && *hints != "" {
		fs.Usage()
		return errUsage
	}
	call := rules.ToolCall{Agent: *agent}
	if *argsJSON != "" {
		a, err := parseArgs(*argsJSON)
		if err != nil {
			return fmt.Errorf("--args: %w", err)
		}
		call.Args = a
	}
	if *hints != "" {
		for _, h := range strings.Split(*hints, ",") {
			hint := rules.HintByName(strings.TrimSpace(h))
			if hint == 0 {
				return fmt.Errorf("--hints: unknown hint %q (want destructiveHint, readOnlyHint, idempotentHint or openWorldHint)", h)
			}
			call.Annotations |= hint
		}
	}
	path := pos[0]
	eng, _, err := loadPolicy(path)
	if err != nil {
		return err
	}
	st := eng.Stats()
	fmt.Fprintf(stdout, "policy %s: ok: %d host patterns, %d CIDR rules, %d http rules, %d intercept and %d passthrough patterns (intercept all: %v)\n",
		path, st.HostRules, st.CIDRRules, st.HTTPRules, st.InterceptRules, st.PassthroughRules, st.InterceptAll)
	if eng.MCP().Defined {
		fmt.Fprintf(stdout, "  mcp: %d servers, %d tool patterns, %d redactions, %d rate limits", st.MCPServers, st.ToolRules, st.MCPRedactions, st.MCPRateLimits)
		if st.PromptRules+st.ResourceRules > 0 {
			fmt.Fprintf(stdout, ", %d prompt patterns, %d resource patterns", st.PromptRules, st.ResourceRules)
		}
		fmt.Fprintln(stdout)
	}
	for _, l := range st.Lists {
		fmt.Fprintf(stdout, "  list %s (%s): %d entries, %d skipped, %d duplicates\n", l.Path, l.Format, l.Entries, l.Skipped, l.Duplicates)
	}
	warnings := eng.Warnings()
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if len(warnings) > 0 && !*strict {
		fmt.Fprintf(stdout, "%d warning(s): the policy loads as it is; --strict makes warnings fail the check\n", len(warnings))
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	bad := 0
	for _, arg := range pos[1:] {
		if !checkHost(tw, eng, *agent, arg, uint16(*port)) {
			bad++
		}
	}
	for _, t := range tools {
		if !checkTool(tw, eng, call, t) {
			bad++
		}
	}
	for _, p := range prompts {
		if !checkPrompt(tw, eng, call, p) {
			bad++
		}
	}
	for _, r := range resources {
		if !checkResource(tw, eng, *agent, r) {
			bad++
		}
	}
	for _, n := range names {
		if !checkDNS(tw, eng, *agent, n) {
			bad++
		}
	}
	for _, r := range requests {
		if !checkRequest(tw, eng, *agent, r) {
			bad++
		}
	}
	if bad > 0 {
		tw.Flush()
		return fmt.Errorf("%d host(s), tool(s), prompt(s), resource(s), DNS question(s) or request(s) could not be parsed", bad)
	}
	if len(warnings) > 0 && *strict {
		tw.Flush()
		return fmt.Errorf("%d warning(s) (--strict)", len(warnings))
	}
	return nil
}

// parseInterspersed parses flags wherever they are among the positional
// arguments ("check POLICY --tool x"), as the flag package alone does
// not; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// checkHost prints the decision for one HOST[:PORT]; false when it
// cannot be parsed.
func checkHost(tw io.Writer, eng *rules.Engine, agent, arg string, port uint16) bool {
	h, err := addr.ParseAuthority(arg, port)
	if err != nil {
		fmt.Fprintf(tw, "%s\tinvalid\t%v\n", arg, err)
		return false
	}
	// The live path's steps (rules.Engine.Explain): the host, then its
	// addresses when the static table knows them; DNS is not consulted.
	x := eng.Explain(rules.Request{Agent: agent, Host: h})
	d := x.Decision
	tls := "tunnel"
	switch t := x.Tunnel; {
	case t.Intercept:
		tls = "intercept=" + t.Rule
	case t.AllowECH:
		tls = "tunnel,ech=allow"
	}
	fmt.Fprintf(tw, "%s\t%s\trule=%s\tsource=%s\t%s\t%s\n", h, d.Outcome(), d.Rule, d.Source, tls, d.Reason)
	return true
}

// checkTool prints the verdict and the obligations for one SERVER.TOOL;
// false when it cannot be parsed.
func checkTool(tw io.Writer, eng *rules.Engine, call rules.ToolCall, arg string) bool {
	server, tool, ok := strings.Cut(arg, ".")
	if !ok || tool == "" {
		fmt.Fprintf(tw, "%s\tinvalid\twant SERVER.TOOL (the server name ends at the first dot; .TOOL for an unbound host)\n", arg)
		return false
	}
	call.Server, call.Tool = server, tool
	x := eng.MCP().ExplainTool(call)
	v := x.ToolVerdict
	label := arg
	if server == "" {
		label = "(unbound)." + tool
	}
	fmt.Fprintf(tw, "%s\t%s\trule=%s\tsource=%s\t%s\n", label, v.Outcome(), v.Rule, v.Source, v.Reason)
	printHold(tw, v.Decision)
	if server != "" && !x.Bound {
		fmt.Fprintf(tw, "  note\tmcp servers defines no server %s: the proxy never decides a call with that server name\n", server)
	}
	if server == "" {
		u := x.Unbound
		fmt.Fprintf(tw, "  unbound host\t%s\trule=%s\tsource=%s\t%s\n", u.Outcome(), u.Rule, u.Source, u.Reason)
	}
	results := x.Results
	for _, r := range v.Redactions {
		scope := "arguments"
		if containsRedaction(results, r.ID) {
			scope += ",results"
		}
		fmt.Fprintf(tw, "  redact %s\tin=%s\tpattern=%s\tsource=%s\n", r.ID, scope, r.Pattern, r.Source)
	}
	for _, r := range results {
		if !containsRedaction(v.Redactions, r.ID) {
			fmt.Fprintf(tw, "  redact %s\tin=results\tpattern=%s\tsource=%s\n", r.ID, r.Pattern, r.Source)
		}
	}
	for _, r := range v.RateLimits {
		mode := ""
		if r.Report {
			mode = "\tmode=report"
		}
		fmt.Fprintf(tw, "  rate-limit %s\tlimit=%s\tburst=%d\tper=%s\tsource=%s%s\n", r.ID, r.Spec, r.Burst, r.Per, r.Source, mode)
	}
	return true
}

// checkPrompt prints the decision for one SERVER.PROMPT; false when it
// cannot be parsed.
func checkPrompt(tw io.Writer, eng *rules.Engine, call rules.ToolCall, arg string) bool {
	server, prompt, ok := strings.Cut(arg, ".")
	if !ok || prompt == "" {
		fmt.Fprintf(tw, "%s\tinvalid\twant SERVER.PROMPT (the server name ends at the first dot; .PROMPT for an unbound host)\n", arg)
		return false
	}
	x := eng.MCP().ExplainPrompt(rules.PromptGet{Agent: call.Agent, Server: server, Prompt: prompt, Args: call.Args})
	d := x.Decision
	label := "prompt " + arg
	if server == "" {
		label = "prompt (unbound)." + prompt
	}
	fmt.Fprintf(tw, "%s\t%s\trule=%s\tsource=%s\t%s\n", label, d.Outcome(), d.Rule, d.Source, readReason(d, "prompts"))
	checkServerNamed(tw, x, server)
	return true
}

// checkResource prints the decision for one SERVER=URI; false when it
// cannot be parsed.
func checkResource(tw io.Writer, eng *rules.Engine, agent, arg string) bool {
	server, uri, ok := strings.Cut(arg, "=")
	if !ok || uri == "" {
		fmt.Fprintf(tw, "%s\tinvalid\twant SERVER=URI (=URI for an unbound host)\n", arg)
		return false
	}
	x := eng.MCP().ExplainResource(rules.ResourceRead{Agent: agent, Server: server, URI: uri})
	d := x.Decision
	label := "resource " + arg
	if server == "" {
		label = "resource (unbound)=" + uri
	}
	fmt.Fprintf(tw, "%s\t%s\trule=%s\tsource=%s\t%s\n", label, d.Outcome(), d.Rule, d.Source, readReason(d, "resources"))
	if canon := rules.CanonicalURI(uri); canon != uri {
		fmt.Fprintf(tw, "  normalised\t%s\t(a deny matching either form applies; an allow must match both)\n", canon)
	}
	checkServerNamed(tw, x, server)
	return true
}

func readReason(d rules.Decision, what string) string {
	if d.Rule == "mcp:method" {
		return "the policy has no mcp " + what + " rules: not ruled"
	}
	return d.Reason
}

func checkServerNamed(tw io.Writer, x rules.ReadExplanation, server string) {
	if server != "" && !x.Bound {
		fmt.Fprintf(tw, "  note\tmcp servers defines no server %s: the proxy never decides a request with that server name\n", server)
	}
	if server == "" {
		u := x.Unbound
		fmt.Fprintf(tw, "  unbound host\t%s\trule=%s\tsource=%s\t%s\n", u.Outcome(), u.Rule, u.Source, u.Reason)
	}
}

func containsRedaction(rs []rules.Redaction, id string) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// parseArgs reads --args as the proxy reads a call's arguments: they go
// into a tools/call that the strict codec parses (dissect/mcp, which
// refuses duplicate keys and names that compete for one member), and
// conditions read them with the codec's JSON Pointer lookup, the one the
// guard's decisions use.
func parseArgs(s string) (rules.ArgLookup, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return nil, errors.New("arguments must be a JSON object")
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"check","arguments":` + s + "\n}}"
	b, err := wire.Parse([]byte(body), wire.Limits{})
	if err != nil {
		return nil, err
	}
	if len(b.Messages) != 1 || b.Messages[0].Args == nil {
		return nil, errors.New("arguments must be a JSON object")
	}
	return codecArgs{b.Messages[0]}, nil
}

// codecArgs is rules.ArgLookup over a message the codec parsed.
type codecArgs struct{ m *wire.Message }

func (a codecArgs) Arg(pointer string) (rules.ArgValue, bool) {
	v, ok := a.m.Arg(pointer)
	return rules.ArgValue{Kind: rules.ArgKind(v.Kind), Text: v.Text}, ok
}

// printHold explains how an approve decision holds the call.
func printHold(tw io.Writer, d rules.Decision) {
	if d.Action == rules.Approve && d.Hold != nil {
		fmt.Fprintf(tw, "  hold\ttimeout=%s\tvia=%s\tno byte goes upstream until an approver decides; past the timeout it is denied\n",
			d.Hold.Timeout, strings.Join(d.Hold.Via(), ","))
	}
}

// checkRequest prints the host and http rules' decision for one
// "METHOD URL"; false when it cannot be parsed.
func checkRequest(tw io.Writer, eng *rules.Engine, agent, arg string) bool {
	method, raw, ok := strings.Cut(strings.TrimSpace(arg), " ")
	u, err := url.Parse(strings.TrimSpace(raw))
	if !ok || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(tw, "%s\tinvalid\twant \"METHOD URL\" with an http:// or https:// URL\n", arg)
		return false
	}
	port := uint16(80)
	if u.Scheme == "https" {
		port = 443
	}
	h, err := addr.ParseAuthority(u.Host, port)
	if err != nil {
		fmt.Fprintf(tw, "%s\tinvalid\t%v\n", arg, err)
		return false
	}
	d := eng.Explain(rules.Request{Agent: agent, Host: h, Method: method, Path: u.Path}).Decision
	fmt.Fprintf(tw, "%s %s\t%s\trule=%s\tsource=%s\t%s\n", method, u, d.Outcome(), d.Rule, d.Source, d.Reason)
	printHold(tw, d)
	if d.Action != rules.Deny {
		printBinding(tw, eng, agent, h, u)
	}
	return true
}

// printBinding names the credential binding that would attach a secret to
// the request, and the secret's source (never its value).
func printBinding(tw io.Writer, eng *rules.Engine, agent string, h addr.Host, u *url.URL) {
	cr := eng.Credentials()
	b := cr.Match(agent, h, u.Scheme, u.Path)
	if b == nil {
		return
	}
	if x := b.Exchange; x != nil {
		src, _ := cr.Store().Source(x.ClientSecret)
		fmt.Fprintf(tw, "  credential\tbinding=%s\tsource=%s\texchanges the agent's bearer token at %s (client %s, secret %s from %s)\n",
			b.ID, b.Source, x.TokenURL, x.ClientID, x.ClientSecret, src)
		return
	}
	if b.Kind == rules.InjectOAuth {
		fmt.Fprintf(tw, "  credential\tbinding=%s\tsource=%s\tattaches the OAuth access token agentg obtains (%s grant), when the request is intercepted or plain http\n",
			b.ID, b.Source, b.OAuth.Grant)
		return
	}
	var from []string
	for _, n := range strings.Split(b.Secrets, ",") {
		src, _ := cr.Store().Source(n)
		from = append(from, n+" from "+src.String())
	}
	fmt.Fprintf(tw, "  credential\tbinding=%s\tsource=%s\tattaches secret %s, when the request is intercepted or plain http\n",
		b.ID, b.Source, strings.Join(from, ", "))
	if b.Cert != nil {
		fmt.Fprintf(tw, "  client certificate\tbinding=%s\tsource=%s\tpresents %s (%s, key %s), when the request is intercepted\n",
			b.ID, b.Source, b.Cert.Subject(), b.Cert.File, b.Cert.Key)
	}
}
