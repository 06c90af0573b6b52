package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
)

// The DNS filter's part of `agentg serve`: the --dns flag (the filter's
// listeners are internal/app's).

// defaultDNSAddr is a loopback port any user may bind and no desktop
// service holds: not 53 (root only, and systemd-resolved's 127.0.0.53),
// not 5353 (multicast DNS: avahi and macOS's mDNSResponder listen there,
// and a query sent to it may reach them), not 5355 (LLMNR, which
// systemd-resolved answers). 1053 is the customary unprivileged DNS port
// (CoreDNS's examples use it).
const defaultDNSAddr = "127.0.0.1:1053"

// dnsFlags is --dns: repeatable; "off" disables the filter.
type dnsFlags struct{ addrs []string }

func (d *dnsFlags) register(fs *flag.FlagSet) {
	fs.Func("dns", "address the DNS filter answers on, UDP and TCP (repeatable, e.g. 127.0.0.1:53 and [::1]:53; default "+defaultDNSAddr+"; \"off\" disables it)", func(v string) error {
		d.addrs = append(d.addrs, v)
		return nil
	})
}

// list is the addresses to listen on; nil when the filter is off.
func (d *dnsFlags) list() ([]string, error) {
	if len(d.addrs) == 0 {
		return []string{defaultDNSAddr}, nil
	}
	for _, a := range d.addrs {
		if a == "off" {
			if len(d.addrs) > 1 {
				return nil, errors.New("--dns off cannot be combined with addresses")
			}
			return nil, nil
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("--dns %q: want HOST:PORT or off: %w", a, err)
		}
	}
	return d.addrs, nil
}
