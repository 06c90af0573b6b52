package netsetup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Applying and removing the iptables form, through <family>-save (to see
// which of agentg's chains and jumps are there) and <family>-restore
// --noflush (one transaction per table), in the network namespace the
// caller runs in. The commands are the system's iptables-restore and
// ip6tables-restore: iptables-nft on current distributions.

// ApplyIptables installs c's rules for IPv4 and IPv6, replacing exactly
// the chains of c's table (and their jumps) an earlier run installed.
// Both families or neither: when the second cannot be installed, the
// first is taken out again, since half the rules would let the other
// family past agentg.
func ApplyIptables(ctx context.Context, c Config) error {
	fams, err := iptables(c)
	if err != nil {
		return err
	}
	for _, f := range fams {
		if err := needIptables(f.cmd); err != nil {
			return err
		}
	}
	for i, f := range fams {
		st, err := iptSave(ctx, f.cmd)
		if err == nil {
			err = iptRestore(ctx, f.cmd, f.restoreScript(c.table(), st))
		}
		if err != nil {
			for _, done := range fams[:i] {
				if st, serr := iptSave(ctx, done.cmd); serr == nil {
					if rs := removeScript(c.table(), st); rs != "" {
						iptRestore(ctx, done.cmd, rs)
					}
				}
			}
			return err
		}
	}
	return nil
}

// RemoveIptables deletes the chains of table (DefaultTable when empty)
// and every jump to them, in both families. It reports whether there
// were any.
func RemoveIptables(ctx context.Context, table string) (bool, error) {
	if table == "" {
		table = DefaultTable
	}
	if err := checkIptTable(table); err != nil {
		return false, err
	}
	had := false
	for _, cmd := range []string{familyIPv4, familyIPv6} {
		if err := needIptables(cmd); err != nil {
			return had, err
		}
		st, err := iptSave(ctx, cmd)
		if err != nil {
			return had, err
		}
		rs := removeScript(table, st)
		if rs == "" {
			continue
		}
		had = true
		if err := iptRestore(ctx, cmd, rs); err != nil {
			return had, err
		}
	}
	return had, nil
}

func needIptables(cmd string) error {
	for _, tool := range []string{cmd + "-save", cmd + "-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install iptables (apt-get install iptables) or nftables, or apply the printed rules yourself", tool)
		}
	}
	return nil
}

func iptSave(ctx context.Context, cmd string) (iptState, error) {
	out, err := run(ctx, "", cmd+"-save")
	if err != nil {
		return iptState{}, err
	}
	return parseSave(out), nil
}

func iptRestore(ctx context.Context, cmd, script string) error {
	_, err := run(ctx, script, cmd+"-restore", "--noflush")
	return err
}

// run runs a command with stdin, returning its standard output, or an
// error that carries what it said.
func run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()+" "+out.String()))
	}
	return out.String(), nil
}

// Backend is the tool that installs the rules.
type Backend string

// The backends.
const (
	BackendNft      Backend = "nft"
	BackendIptables Backend = "iptables"
)

// ParseBackend reads --backend: nft, iptables, or auto (DetectBackend).
func ParseBackend(s string) (Backend, error) {
	switch s {
	case "", "auto":
		return DetectBackend()
	case string(BackendNft), string(BackendIptables):
		return Backend(s), nil
	}
	return "", fmt.Errorf("backend %q: nft, iptables or auto", s)
}

// DetectBackend is nft when the nft command is installed, else iptables
// when iptables-restore and ip6tables-restore are (a host with only
// iptables-nft), else an error saying what to install.
func DetectBackend() (Backend, error) {
	if _, err := exec.LookPath("nft"); err == nil {
		return BackendNft, nil
	}
	if needIptables(familyIPv4) == nil && needIptables(familyIPv6) == nil {
		return BackendIptables, nil
	}
	return "", errors.New("neither nft nor iptables-restore and ip6tables-restore found: install nftables (apt-get install nftables) or iptables")
}
