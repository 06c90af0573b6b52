package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/certs"
)

// runSecrets is `agentg secrets list`: the policy's secrets with their
// sources, the bindings that attach them, whether agentg holds them and
// when each was last attached, from the running agentg's admin API; with
// --policy FILE and no agentg running, from the file alone (then nothing
// is held and no last use is known). Never a value: the API has no field
// for one.
func runSecrets(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("secrets", "list [--json] [--policy FILE] [--admin ADDR] [--data-dir DIR]", stderr)
	asJSON := fs.Bool("json", false, "print the secrets as the API's JSON ({\"items\": [...]})")
	policy := fs.String("policy", "", "when no agentg is running, list the secrets of this policy file (no state, no last use)")
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
	items, live, err := fromServer(&af, *dataDir, (*admin.Client).Secrets)
	if err != nil {
		return err
	}
	from := "the agentg at " + af.asked
	if !live {
		if *policy == "" {
			return errors.New("no running agentg answers (start one, or give --data-dir/--admin of the one running); --policy FILE lists a policy's secrets without one")
		}
		eng, _, err := loadPolicy(*policy)
		if err != nil {
			return err
		}
		items = admin.Secrets(eng)
		from = "policy " + *policy + " (no running agentg: nothing read, last use unknown)"
	}
	if *asJSON {
		return printJSON(stdout, admin.List[admin.Secret]{Items: items})
	}
	fmt.Fprintf(stdout, "secrets of %s\n", from)
	if len(items) == 0 {
		fmt.Fprintln(stdout, "the policy defines no secret")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tBINDINGS\tSTATE\tLAST USE")
	for _, s := range items {
		last := "-"
		if s.LastUse != nil {
			last = s.LastUse.Local().Format(time.DateTime) + " (" + time.Since(*s.LastUse).Round(time.Second).String() + " ago)"
		}
		bindings := strings.Join(s.Bindings, ",")
		if bindings == "" {
			bindings = "(none)"
		}
		state := s.State
		if s.Error != "" {
			state += ": " + s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(s.Name, false), printable(s.Source, false), printable(bindings, false), printable(state, false), last)
	}
	return tw.Flush()
}
