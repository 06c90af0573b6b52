//go:build linux

package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentg/agentg/internal/testenv"
)

// The topology, all of it inside namespaces this process creates and
// removes (and with them every interface and rule):
//
//	direct agent  10.78.1.2 ─┐
//	                         ├─ router 10.78.1.1 | 10.78.2.1 | 11.78.0.1 ── upstream 11.78.0.2
//	redirected agent 10.78.2.2 ─┘
//
// The origin's address is a public one (no CIDR rule needed, as for a
// real origin) that exists only in the upstream namespace. The clients'
// sockets are made on a thread that has entered an agent namespace; the
// origins' listeners likewise in the upstream namespace.

const (
	netnsRouterDirect    = "10.78.1.1"
	netnsOrigin          = "11.78.0.2"
	netnsTransparentPort = "15001"
)

// NetnsPolicy is the policy of the namespace bench: Policy's, with the
// origins' names resolved to the origin's address in the upstream
// namespace (a public address: no CIDR rule).
const NetnsPolicy = `# agentg-load -transparent: allow the harness's origins, deny the rest.
default: deny
hosts:
  - allow: ` + Host + `
  - allow: ` + InterceptHost + `
resolve:
  ` + Host + `: [` + netnsOrigin + `]
  ` + InterceptHost + `: [` + netnsOrigin + `]
intercept: [` + InterceptHost + `]
http:
  - deny: "DELETE ` + InterceptHost + `/**"
`

// NetnsEnv is the namespace topology with the origins and agentg running.
// Close it when done.
type NetnsEnv struct {
	Dir                                string
	HTTPBase, HTTPSBase, InterceptBase string
	Agentg                             *testenv.Agentg
	// Binary is the agentg binary Agentg runs (in the router namespace,
	// through a wrapper script).
	Binary string
	// Namespaces are the network namespaces made for the run: direct
	// agent, redirected agent, router, upstream.
	Namespaces []string
	// Rules is what agentg netsetup installed on the router.
	Rules string

	keep               bool
	roots, agentgRoots *x509.CertPool
	origins            map[string]string
	plain, tls         *testenv.Upstream
	self               *os.File // this process's own network namespace
	direct, redirected *os.File
	stopped            bool
}

// StartNetns builds the topology (root only), starts the origins in the
// upstream namespace and agentg in the router namespace with both
// listeners, and installs the redirect with agentg netsetup --apply.
func StartNetns(cfg NetnsConfig) (e *NetnsEnv, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the transparent bench builds network namespaces: run it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("the transparent bench needs ip (apt-get install iproute2)")
	}
	e = &NetnsEnv{keep: cfg.Keep, origins: map[string]string{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Dir, err = os.MkdirTemp("", "agentg-bench-netns-"); err != nil {
		return nil, err
	}
	bin := cfg.Agentg
	if bin == "" {
		if bin, err = testenv.AgentgBinary(); err != nil {
			return nil, err
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	e.Binary = bin
	routerIf, err := e.topology()
	if err != nil {
		return nil, err
	}
	if e.self, err = os.Open("/proc/self/ns/net"); err != nil {
		return nil, err
	}
	if e.direct, err = os.Open("/run/netns/" + e.Namespaces[0]); err != nil {
		return nil, err
	}
	if e.redirected, err = os.Open("/run/netns/" + e.Namespaces[1]); err != nil {
		return nil, err
	}
	router, up := e.Namespaces[2], e.Namespaces[3]

	upCA, err := testenv.NewCA("agentg bench upstream CA")
	if err != nil {
		return nil, err
	}
	e.roots = upCA.Pool()
	leaf, err := upCA.Leaf([]string{Host, InterceptHost}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	var lnPlain, lnTLS net.Listener
	if err = e.inNetns(up, func() (err error) {
		if lnPlain, err = net.Listen("tcp", netnsOrigin+":80"); err != nil {
			return err
		}
		lnTLS, err = net.Listen("tcp", netnsOrigin+":443")
		return err
	}); err != nil {
		return nil, err
	}
	sized := http.HandlerFunc(testenv.Sized)
	e.plain = testenv.StartUpstream(testenv.UpstreamOptions{Handler: sized, Quiet: true, Listener: lnPlain})
	e.tls = testenv.StartUpstream(testenv.UpstreamOptions{Handler: sized, Cert: &leaf, Quiet: true, Listener: lnTLS})
	e.HTTPBase = "http://" + e.alias(Host, e.plain)
	e.HTTPSBase = "https://" + e.alias(Host, e.tls)
	e.InterceptBase = "https://" + e.alias(InterceptHost, e.tls)

	upCAFile := filepath.Join(e.Dir, "upstream-ca.pem")
	if err = upCA.WriteCert(upCAFile); err != nil {
		return nil, err
	}
	wrapper := filepath.Join(e.Dir, "agentg-in-router")
	if err = os.WriteFile(wrapper, []byte("#!/bin/sh\nexec ip netns exec "+router+" "+bin+" \"$@\"\n"), 0o755); err != nil {
		return nil, err
	}
	e.Agentg, err = testenv.StartAgentg(testenv.AgentgConfig{
		Binary: wrapper, Dir: filepath.Join(e.Dir, "agentg"), Policy: NetnsPolicy,
		Listen: netnsRouterDirect + ":3128",
		Args:   []string{"--transparent", "0.0.0.0:" + netnsTransparentPort, "--upstream-ca", upCAFile, "--reload-interval", "0"},
		Stderr: cfg.Stderr,
	})
	if err != nil {
		return nil, err
	}
	if e.agentgRoots, err = e.Agentg.CAPool(); err != nil {
		return nil, err
	}
	if _, err = e.ip("netns", "exec", router, bin, "netsetup", "--iface", routerIf,
		"--transparent", "0.0.0.0:"+netnsTransparentPort, "--apply"); err != nil {
		return nil, err
	}
	if e.Rules, err = e.ip("netns", "exec", router, bin, "netsetup", "--iface", routerIf,
		"--transparent", "0.0.0.0:"+netnsTransparentPort); err != nil {
		return nil, err
	}
	return e, nil
}

// topology makes the namespaces, links, addresses and routes, and
// returns the router's interface toward the redirected agent.
func (e *NetnsEnv) topology() (string, error) {
	id := fmt.Sprint(os.Getpid() % 1000000)
	for _, role := range []string{"d", "t", "r", "u"} {
		ns := "agb" + role + id
		if _, err := e.ip("netns", "add", ns); err != nil {
			return "", err
		}
		e.Namespaces = append(e.Namespaces, ns)
	}
	d, t, r, u := e.Namespaces[0], e.Namespaces[1], e.Namespaces[2], e.Namespaces[3]
	steps := [][]string{
		{"link", "add", "name", "bd" + id, "netns", d, "type", "veth", "peer", "name", "rbd" + id, "netns", r},
		{"link", "add", "name", "bt" + id, "netns", t, "type", "veth", "peer", "name", "rbt" + id, "netns", r},
		{"link", "add", "name", "rbu" + id, "netns", r, "type", "veth", "peer", "name", "bu" + id, "netns", u},
		{"-n", d, "addr", "add", "10.78.1.2/24", "dev", "bd" + id},
		{"-n", r, "addr", "add", "10.78.1.1/24", "dev", "rbd" + id},
		{"-n", t, "addr", "add", "10.78.2.2/24", "dev", "bt" + id},
		{"-n", r, "addr", "add", "10.78.2.1/24", "dev", "rbt" + id},
		{"-n", r, "addr", "add", "11.78.0.1/24", "dev", "rbu" + id},
		{"-n", u, "addr", "add", netnsOrigin + "/24", "dev", "bu" + id},
	}
	for ns, ifs := range map[string][]string{d: {"lo", "bd" + id}, t: {"lo", "bt" + id}, r: {"lo", "rbd" + id, "rbt" + id, "rbu" + id}, u: {"lo", "bu" + id}} {
		for _, i := range ifs {
			steps = append(steps, []string{"-n", ns, "link", "set", i, "up"})
		}
	}
	steps = append(steps,
		[]string{"-n", d, "route", "add", "default", "via", "10.78.1.1"},
		[]string{"-n", t, "route", "add", "default", "via", "10.78.2.1"},
		[]string{"-n", u, "route", "add", "default", "via", "11.78.0.1"},
		[]string{"netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	)
	for _, s := range steps {
		if _, err := e.ip(s...); err != nil {
			return "", err
		}
	}
	return "rbt" + id, nil
}

func (e *NetnsEnv) ip(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// inNetns runs f on a thread in namespace ns: the sockets f makes live
// there.
func (e *NetnsEnv) inNetns(ns string, f func() error) error {
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer target.Close()
	return inNetnsFD(e.self, target, f)
}

// inNetnsFD runs f on a thread that has entered the namespace target and
// goes back to self after; a thread that cannot go back ends with its
// goroutine (it is never unlocked), so no other code runs there.
func inNetnsFD(self, target *os.File, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// alias names u as name:port for the clients, and maps that back to the
// origin's address for the ones that dial it themselves.
func (e *NetnsEnv) alias(name string, u *testenv.Upstream) string {
	a := u.HostPort(name)
	e.origins[a] = u.Listener.Addr().String()
	return a
}

// ClientFor is Env.ClientFor across the namespaces: direct clients dial
// the origin from the direct agent namespace, explicit ones agentg's
// explicit listener from there, transparent ones the origin from the
// redirected namespace.
func (e *NetnsEnv) ClientFor(m Mode, sc Scenario, conns int) *http.Client {
	roots := e.roots
	if sc.Intercept && m != Direct {
		roots = e.agentgRoots
	}
	from := e.direct
	if m == Transparent {
		from = e.redirected
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (c net.Conn, err error) {
			if a, ok := e.origins[address]; ok {
				address = a
			}
			err = inNetnsFD(e.self, from, func() (err error) {
				c, err = d.DialContext(ctx, network, address)
				return err
			})
			return c, err
		},
		TLSClientConfig:       &tls.Config{RootCAs: roots},
		MaxIdleConns:          conns + 4,
		MaxIdleConnsPerHost:   conns + 4,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		DisableKeepAlives:     sc.NewConn,
	}
	if m == Agentg {
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: e.Agentg.Addr})
	}
	return &http.Client{Transport: tr}
}

// DoorEvents counts agentg's events of each door so far, transparent
// and explicit (no door): requests (kind http) and tunnels. A tunnel is
// counted by its open event (kind tunnel-open), written as it is
// established, before a byte crosses it, so a run's tunnels are all
// counted once the run is over; the close event (kind connect) comes
// whenever agentg sees the connection end, which may be after the next
// run began. Requests for a path starting with MarkerPath are left out:
// they are the harness's own.
func (e *NetnsEnv) DoorEvents() (transparent, explicit int64) {
	lines, _ := testenv.ReadLog(e.Agentg.LogFile)
	for _, l := range lines {
		if l["kind"] != "http" && l["kind"] != "tunnel-open" {
			continue
		}
		if p, _ := l["path"].(string); strings.HasPrefix(p, MarkerPath) {
			continue
		}
		if l["door"] == "transparent" {
			transparent++
		} else {
			explicit++
		}
	}
	return transparent, explicit
}

// MarkerPath starts the path of the harness's marker requests.
const MarkerPath = "/agentg-marker-"

// Marker sends a plain HTTP request for MarkerPath+id to the origin
// through the door of m (Agentg: the explicit listener; Transparent: the
// redirect), on a connection of its own, and waits until its event is in
// agentg's log file: agentg writes the file in order (flushing it every
// 100 ms), so every event logged before the marker's is then there too.
// id must be new for each marker.
func (e *NetnsEnv) Marker(ctx context.Context, m Mode, id string) error {
	var from int64
	if fi, err := os.Stat(e.Agentg.LogFile); err == nil {
		from = fi.Size()
	}
	c := e.ClientFor(m, Scenario{NewConn: true}, 1)
	defer c.CloseIdleConnections()
	path := MarkerPath + id
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.HTTPBase+path+"?n=1", nil)
	if err != nil {
		return fmt.Errorf("marker %s: %w", path, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("marker %s through %s: %w", path, m, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("marker %s through %s: %s", path, m, resp.Status)
	}
	want := []byte(`"path":"` + path + `"`)
	for {
		b, err := readFrom(e.Agentg.LogFile, from)
		if err != nil {
			return fmt.Errorf("marker %s: %w", path, err)
		}
		if bytes.Contains(b, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("marker %s through %s: not in %s: %w", path, m, e.Agentg.LogFile, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readFrom reads path from offset on.
func readFrom(path string, offset int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// Shutdown stops agentg (SIGTERM, so that it flushes its log).
func (e *NetnsEnv) Shutdown() error {
	if e.Agentg == nil || e.stopped {
		return nil
	}
	e.stopped = true
	return e.Agentg.Stop(10 * time.Second)
}

// Close stops agentg and the origins, deletes the namespaces (and every
// link and rule in them) and the run's files (unless Keep).
func (e *NetnsEnv) Close() {
	e.Shutdown()
	for _, u := range []*testenv.Upstream{e.plain, e.tls} {
		if u != nil {
			u.Close()
		}
	}
	for _, f := range []*os.File{e.self, e.direct, e.redirected} {
		if f != nil {
			f.Close()
		}
	}
	for _, ns := range e.Namespaces {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	e.Namespaces = nil
	if e.Dir != "" && !e.keep {
		os.RemoveAll(e.Dir)
	}
}
