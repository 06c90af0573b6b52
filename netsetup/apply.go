package netsetup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Applying and removing go through the nft command, in the network
// namespace the caller runs in.

// Apply installs ruleset (from Ruleset) as one transaction.
func Apply(ctx context.Context, ruleset string) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("nft not found: install nftables (apt-get install nftables), or apply the printed rules yourself")
	}
	return nft(ctx, ruleset, "-f", "-")
}

// Remove deletes table (DefaultTable when empty) and everything in it.
// It reports whether there was one.
func Remove(ctx context.Context, table string) (bool, error) {
	if table == "" {
		table = DefaultTable
	}
	if !nameRE.MatchString(table) {
		return false, fmt.Errorf("table name %q: letters, digits and _.@:- only", table)
	}
	if err := nft(ctx, "", "list", "table", "inet", table); err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return false, nil
		}
		return false, err
	}
	return true, nft(ctx, "", "delete", "table", "inet", table)
}

func nft(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, "nft", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// NetnsIfaces names the interfaces of this namespace whose peers live in
// the network namespace name (the host side of its veth pairs): what
// "--netns name" redirects.
func NetnsIfaces(ctx context.Context, name string) ([]string, error) {
	var nss []struct {
		Name string `json:"name"`
		ID   *int   `json:"id"`
	}
	if err := ipJSON(ctx, &nss, "netns", "list"); err != nil {
		return nil, err
	}
	id := -1
	for _, ns := range nss {
		if ns.Name == name {
			if ns.ID == nil {
				return nil, fmt.Errorf("network namespace %s has no link to this one", name)
			}
			id = *ns.ID
		}
	}
	if id < 0 {
		return nil, fmt.Errorf("no network namespace %s yet (ip netns list): the rules name the host-side interfaces of its veth pairs, so create it and its veth pair first (ip netns add %s; ip link add ... type veth peer ... netns %s), or name the host-side interface with --iface IF instead of --netns", name, name, name)
	}
	var links []struct {
		Name  string `json:"ifname"`
		NetNS *int   `json:"link_netnsid"`
	}
	if err := ipJSON(ctx, &links, "link", "show"); err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if l.NetNS != nil && *l.NetNS == id {
			out = append(out, l.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("network namespace %s has no interface whose peer is in this namespace", name)
	}
	return out, nil
}

func ipJSON(ctx context.Context, v any, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"-j"}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
