package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/agentg/agentg/netsetup"
)

// runNetsetup prints, applies or removes the firewall rules of transparent
// mode (package netsetup): nftables, or iptables where nft is missing.
func runNetsetup(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("netsetup", "(--netns NAME | --iface IF | --uid UID | --cgroup PATH)... --transparent ADDR [--dns ADDR] [--mark N] [--backend nft|iptables] [--apply | --remove]", stderr)
	var c netsetup.Config
	var netns []string
	fs.Func("netns", "redirect the network namespace NAME, whose default route goes through this host (its veth peers here; repeatable)", func(v string) error {
		netns = append(netns, v)
		return nil
	})
	fs.Func("iface", "redirect what arrives on interface IF (a container's veth, a bridge; repeatable)", func(v string) error {
		c.Ifaces = append(c.Ifaces, v)
		return nil
	})
	fs.Func("uid", "redirect the traffic of local uid UID (repeatable)", func(v string) error {
		u, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("uid %q: a number", v)
		}
		c.UIDs = append(c.UIDs, uint32(u))
		return nil
	})
	fs.Func("cgroup", "redirect the traffic of cgroup v2 PATH, relative to the cgroup root (repeatable)", func(v string) error {
		c.Cgroups = append(c.Cgroups, v)
		return nil
	})
	transparent := fs.String("transparent", "", "where agentg serve --transparent listens (required)")
	dns := fs.String("dns", "", "where agentg's DNS filter listens; UDP and TCP 53 go there (without it DNS is dropped like other UDP)")
	mark := fs.String("mark", strconv.Itoa(netsetup.DefaultMark), "agentg's own mark (agentg serve --mark): traffic carrying it is never redirected; 0 for none")
	fs.StringVar(&c.Table, "table", "", "name of the nftables table (inet family) agentg owns, and the prefix of its iptables chains (default "+netsetup.DefaultTable+")")
	backendFlag := fs.String("backend", "auto", "nft, iptables (iptables-restore and ip6tables-restore, into chains agentg owns), or auto: nft when the nft command is installed, else iptables")
	apply := fs.Bool("apply", false, "install the rules (root), replacing the table if it exists")
	remove := fs.Bool("remove", false, "delete the table and every rule in it (root)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	backend, err := netsetup.ParseBackend(*backendFlag)
	if err != nil {
		if *backendFlag != "auto" || *apply || *remove {
			return err
		}
		backend = netsetup.BackendNft // printing needs neither tool
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if *remove {
		if *apply {
			return errors.New("--apply and --remove: choose one")
		}
		remove := netsetup.Remove
		if backend == netsetup.BackendIptables {
			remove = netsetup.RemoveIptables
		}
		had, err := remove(ctx, c.Table)
		if err != nil {
			return err
		}
		if !had {
			what := "table"
			if backend == netsetup.BackendIptables {
				what = "chains"
			}
			fmt.Fprintf(stdout, "no agentg %s to remove\n", what)
		}
		return nil
	}
	for _, n := range netns {
		ifs, err := netsetup.NetnsIfaces(ctx, n)
		if err != nil {
			return fmt.Errorf("--netns %s: %w", n, err)
		}
		c.Ifaces = append(c.Ifaces, ifs...)
	}
	if c.Transparent, err = parseListen("transparent", *transparent); err != nil {
		return err
	}
	if *dns != "" {
		if c.DNS, err = parseListen("dns", *dns); err != nil {
			return err
		}
	}
	m, err := strconv.ParseUint(*mark, 0, 32)
	if err != nil {
		return fmt.Errorf("--mark %q: a number (0x4147 or 16711)", *mark)
	}
	c.Mark = uint32(m)
	if backend == netsetup.BackendIptables {
		if *apply {
			return netsetup.ApplyIptables(ctx, c)
		}
		rs, err := netsetup.IptablesScript(c)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, rs)
		return err
	}
	rs, err := netsetup.Ruleset(c)
	if err != nil {
		return err
	}
	if !*apply {
		_, err := io.WriteString(stdout, rs)
		return err
	}
	return netsetup.Apply(ctx, rs)
}

// parseListen reads a listening address: ip:port, or :port for every
// address.
func parseListen(flag, v string) (netip.AddrPort, error) {
	if v == "" {
		return netip.AddrPort{}, fmt.Errorf("--%s is required: the address agentg listens on (ip:port)", flag)
	}
	if strings.HasPrefix(v, ":") {
		v = "0.0.0.0" + v
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--%s %q: %w", flag, v, err)
	}
	return ap, nil
}
