package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/certs"
)

// Approvals: serve's flags for holding calls (approvalFlags), and the
// commands that decide them through the running agentg's admin API:
// agentg approvals list, agentg approve ID, agentg deny ID.

// approvalFlags are serve's approval settings.
type approvalFlags struct {
	keepAlive  time.Duration
	maxPending int
	webhook    string
	secretFile string
}

func (a *approvalFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&a.keepAlive, "approval-keepalive", 15*time.Second, "while a call is held for approval on an event stream, send a comment line this often")
	fs.IntVar(&a.maxPending, "approvals-max-pending", 10000, "most calls held for approval at once; past it a call an approve rule covers is denied")
	fs.StringVar(&a.webhook, "approvals-webhook", "", "POST each pending approval as JSON to this URL (signed: see README, Approvals)")
	fs.StringVar(&a.secretFile, "approvals-webhook-secret-file", "", "file holding the webhook's HMAC-SHA256 secret (required with --approvals-webhook)")
}

// approvals is serve's running approvals broker and its store.
type approvals struct {
	broker *approval.Broker
	store  *approval.MemoryStore
	hook   *approval.Webhook
}

// open builds the store (pending ids in dataDir), the webhook and the
// broker, and says which calls a previous run left pending.
func (a *approvalFlags) open(dataDir string, log *audit.Logger, zl *zerolog.Logger) (*approvals, error) {
	if a.keepAlive <= 0 {
		return nil, fmt.Errorf("--approval-keepalive must be positive, not %s", a.keepAlive)
	}
	if a.maxPending <= 0 {
		return nil, fmt.Errorf("--approvals-max-pending must be positive, not %d", a.maxPending)
	}
	st, err := approval.NewMemoryStore(approval.StoreOptions{DataDir: dataDir, MaxPending: a.maxPending,
		OnError: func(err error) { zl.Error().Err(err).Msg("approvals state") }})
	if err != nil {
		return nil, fmt.Errorf("approvals state in %s: %w", dataDir, err)
	}
	out := &approvals{store: st}
	cfg := approval.Config{Store: st, Log: log}
	switch {
	case a.webhook != "" && a.secretFile == "":
		st.Close()
		return nil, errors.New("--approvals-webhook wants --approvals-webhook-secret-file: an unsigned notification could be forged")
	case a.webhook != "":
		secret, err := approval.ReadSecretFile(a.secretFile)
		if err == nil {
			out.hook, err = approval.NewWebhook(approval.WebhookConfig{URL: a.webhook, Secret: secret,
				OnError: func(err error) { zl.Warn().Err(err).Msg("approvals webhook") }})
		}
		if err != nil {
			st.Close()
			return nil, err
		}
		cfg.Notify = out.hook
	}
	if out.broker, err = approval.New(cfg); err != nil {
		st.Close()
		return nil, err
	}
	if n := out.broker.Recover(); n > 0 {
		zl.Warn().Int("approvals", n).Msg("denied the calls the previous run left held for approval: they were never sent")
	}
	return out, nil
}

// close denies what is still pending, then writes the store.
func (a *approvals) close() {
	a.broker.Shutdown()
	if a.hook != nil {
		a.hook.Close()
	}
	a.store.Close()
}

// runApprovals is `agentg approvals list`.
func runApprovals(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("approvals", "list [--json] [--admin ADDR] [--data-dir DIR]", stderr)
	asJSON := fs.Bool("json", false, "print the approvals as the API's JSON")
	dataDir := fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the admin token is")
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "list" {
		fs.Usage()
		return errUsage
	}
	c, err := af.client(*dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items, err := c.Approvals(ctx)
	if err != nil {
		return explainAPIError(af.asked, *dataDir, err)
	}
	if *asJSON {
		return printJSON(stdout, admin.List[admin.Approval]{Items: items})
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "no calls are held for approval")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tAGENT\tCALL\tRULE\tEXPIRES IN\tARGS/BODY")
	for _, a := range items {
		what := a.Server + "." + a.Tool
		shown := a.Args
		if a.Kind == "http" {
			what = a.Method + " " + a.URL
			shown = bodySummary(a)
		}
		if len(shown) > 80 {
			shown = shown[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Kind, a.Agent, printable(what, false), a.Rule,
			time.Until(a.Expires).Round(time.Second), printable(shown, false))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The table shows a line of each; the bodies of held requests follow
	// whole (as previewed: bounded and redacted), for the approver to
	// read what would be sent.
	for _, a := range items {
		if a.Kind != "http" || a.BodySize == 0 {
			continue
		}
		fmt.Fprintf(stdout, "\n%s body: %s\n", a.ID, bodySummary(a))
		for _, line := range strings.Split(printable(a.Body, true), "\n") {
			fmt.Fprintln(stdout, "  | "+line)
		}
		if a.BodyTruncated {
			fmt.Fprintf(stdout, "  [truncated: the preview shows %d of %d bytes]\n", len(a.Body), a.BodySize)
		}
	}
	return nil
}

// bodySummary is a held request's body in one line: its size, digest and
// the start of its preview, quoted.
func bodySummary(a admin.Approval) string {
	if a.BodySize == 0 {
		return "(no body)"
	}
	sum := a.BodySHA256
	if len(sum) > 12 {
		sum = sum[:12]
	}
	s := fmt.Sprintf("%d bytes, sha256 %s", a.BodySize, sum)
	if a.BodyEncoding != "" {
		s += ", shown decoded from " + a.BodyEncoding
	}
	if a.BodyTruncated {
		s += ", truncated"
	}
	return s + ": " + strconv.Quote(a.Body)
}

// printable escapes what a terminal would act on rather than show
// (control characters, escape sequences, bidirectional overrides), so
// that what an agent sent cannot redraw the approver's screen; with
// lines, newlines and tabs are kept.
func printable(s string, lines bool) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case lines && (r == '\n' || r == '\t'):
			sb.WriteRune(r)
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			q := strconv.QuoteRuneToASCII(r)
			sb.WriteString(q[1 : len(q)-1])
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// runApprove is `agentg approve ID [--scope agent-tool] [--for 10m]`.
func runApprove(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("approve", "ID [--scope call|agent-tool] [--for 10m] [--admin ADDR] [--data-dir DIR]", stderr)
	scope := fs.String("scope", "", "remember the approval: call (this call only, the default) or agent-tool (this agent, tool and arguments, for --for)")
	forDur := fs.Duration("for", 0, "with --scope agent-tool: how long the approval is remembered (default 10m; --for alone implies agent-tool)")
	dataDir := fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the admin token is")
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	req := admin.ApproveRequest{Scope: *scope}
	if *forDur != 0 {
		req.For = forDur.String()
	}
	return decideCLI(&af, *dataDir, stdout, func(c *admin.Client, ctx context.Context) (admin.Approval, error) {
		return c.Approve(ctx, pos[0], req)
	})
}

// runDeny is `agentg deny ID [--reason TEXT]`.
func runDeny(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("deny", "ID [--reason TEXT] [--admin ADDR] [--data-dir DIR]", stderr)
	reason := fs.String("reason", "", "why, for the agent's error and the log")
	dataDir := fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the admin token is")
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	return decideCLI(&af, *dataDir, stdout, func(c *admin.Client, ctx context.Context) (admin.Approval, error) {
		return c.Deny(ctx, pos[0], *reason)
	})
}

func decideCLI(af *adminFlags, dataDir string, stdout io.Writer, call func(*admin.Client, context.Context) (admin.Approval, error)) error {
	c, err := af.client(dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := call(c, ctx)
	if err != nil {
		return explainAPIError(af.asked, dataDir, err)
	}
	line := a.ID + " " + a.State
	if a.Scope != "" && a.Scope != approval.ScopeCall {
		line += " (" + a.Scope + " for " + a.For + ")"
	}
	if a.Reason != "" {
		line += ": " + a.Reason
	}
	fmt.Fprintln(stdout, strings.TrimSpace(line))
	return nil
}
