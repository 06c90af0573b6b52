package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agentg/agentg/audit"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/certs"
)

// runEvents prints the running agentg's recent decisions, or follows them,
// through its admin API.
func runEvents(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events", "[--last N] [--follow] [--agent A] [--kind K] [--decision D] [--json] [--admin ADDR] [--data-dir DIR]", stderr)
	follow := fs.Bool("follow", false, "follow the events as they happen (Ctrl-C to stop)")
	last := fs.Int("last", -1, fmt.Sprintf("first print up to this many of the most recent events the filters pick (agentg keeps the last %d; older ones are in its log); default 20, or 0 with --follow", admin.DefaultRecentEvents))
	var f admin.EventFilter
	multi := func(dst *[]string) func(string) error {
		return func(v string) error {
			for p := range strings.SplitSeq(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					*dst = append(*dst, p)
				}
			}
			return nil
		}
	}
	fs.Func("agent", "only this agent's events (repeatable, or comma-separated)", multi(&f.Agents))
	fs.Func("kind", "only events of this kind: "+strings.Join(audit.Kinds, ", ")+" (repeatable, or comma-separated)", multi(&f.Kinds))
	fs.Func("decision", "only this decision: "+strings.Join(audit.Outcomes, ", ")+" (repeatable, or comma-separated)", multi(&f.Decisions))
	asJSON := fs.Bool("json", false, "print each event as the JSON line agentg logs")
	dataDir := fs.String("data-dir", certs.DefaultDir(), "agentg's data directory, where the admin token is")
	var af adminFlags
	af.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return errUsage
	}
	if *last < 0 {
		*last = 20
		if *follow {
			*last = 0
		}
	}
	if err := f.Check(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	if *last > admin.DefaultRecentEvents {
		return fmt.Errorf("--last %d: agentg keeps the last %d events; older ones are in its log", *last, admin.DefaultRecentEvents)
	}
	c, err := af.client(*dataDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var opened func()
	if *follow {
		opened = func() { fmt.Fprintf(stderr, "following events at %s (Ctrl-C to stop)\n", c.Addr()) }
	}
	err = c.Events(ctx, admin.EventsRequest{Filter: f, Last: *last, Follow: *follow}, opened, func(e admin.StreamEvent) error {
		switch {
		case e.Type == "dropped":
			fmt.Fprintf(stderr, "agentg events: this stream read too slowly and missed %d event(s) so far\n", e.Dropped)
			return nil
		case *asJSON:
			_, err := fmt.Fprintf(stdout, "%s\n", e.Data)
			return err
		}
		_, err := fmt.Fprintln(stdout, eventLine(e.Data))
		return err
	})
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, admin.ErrNotRunning):
		return fmt.Errorf("%w: is agentg serving, with --admin %s?", err, c.Addr())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("agentg ended the event stream (it is shutting down)")
	}
	return explainAPIError(c.Addr(), *dataDir, err)
}

// eventLine is one event for people: time, kind, decision, agent, what,
// the rule and why.
func eventLine(data []byte) string {
	var e map[string]any
	if json.Unmarshal(data, &e) != nil {
		return string(data)
	}
	s := func(k string) string {
		v, _ := e[k].(string)
		return v
	}
	what := s("host")
	if p, ok := e["port"].(float64); ok {
		what += fmt.Sprintf(":%d", int(p))
	}
	what += s("path")
	if m := s("method"); m != "" {
		what = m + " " + what
	}
	if t := s("tool"); t != "" {
		what += " tool " + s("server") + "." + t
	}
	line := fmt.Sprintf("%s %-7s %-6s %-12s %s rule=%s", s("time"), s("kind"), s("decision"), s("agent"), what, s("rule"))
	if r := s("reason"); r != "" {
		line += " (" + r + ")"
	}
	if st, ok := e["status"].(float64); ok {
		line += fmt.Sprintf(" status=%d", int(st))
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, line)
}
