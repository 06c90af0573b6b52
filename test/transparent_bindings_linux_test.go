//go:build linux

package test

// Raw TCP and SNI agreement by the DNS filter's bindings. agentg serve
// has no DNS filter to take bindings from yet, so the proxy runs in a
// helper process (this test binary, started in the router namespace) with
// a fixed table of bindings behind proxy.NameBindings; everything else is
// as in TestTransparent.

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
)

const helperEnv = "AGENTG_TRANSPARENT_HELPER"

// fixedBindings is agent|name|ip entries.
type fixedBindings map[string][]string

func (b fixedBindings) NamesFor(agent string, ip netip.Addr) []string {
	return b[agent+"|"+ip.String()]
}

var _ proxy.NameBindings = fixedBindings{}

// TestTransparentBindingsHelper is the helper process's body; run
// directly it skips.
func TestTransparentBindingsHelper(t *testing.T) {
	cfg := os.Getenv(helperEnv)
	if cfg == "" {
		t.Skip("the helper process of TestTransparentBindings")
	}
	parts := strings.Split(cfg, ";")
	policy, logPath := parts[0], parts[1]
	b := fixedBindings{}
	for _, e := range parts[2:] {
		f := strings.Split(e, "|") // agent|name|ip
		b[f[0]+"|"+f[2]] = append(b[f[0]+"|"+f[2]], f[1])
	}
	eng, err := rules.Load(policy)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	srv, err := proxy.New(proxy.Config{Policy: rules.NewLive(policy, eng), Log: audit.New(lf), Bindings: b, Mark: 0x4147})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := proxy.ListenTransparent(context.Background(), "0.0.0.0:"+transparentPort)
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTransparent(ln)
	fmt.Println("READY")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

func TestTransparentBindings(t *testing.T) {
	e := newTransparentEnv(t, nftFirewall)
	e.netsetup("--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--apply")
	policy := filepath.Join(e.dir, "bindings-policy.yaml")
	if err := os.WriteFile(policy, []byte("default: deny\nhosts:\n  - allow: [raw.test, bound.test]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(e.dir, "bindings.log")
	agent := e.agentIP.String()
	up2, up3, up5 := e.upIP(2).String(), e.upIP(3).String(), e.upIP(5).String()
	cfg := strings.Join([]string{policy, logPath,
		agent + "|raw.test|" + up5, agent + "|bound.test|" + up5, agent + "|denied.test|" + up3,
		"10.0.0.99|raw.test|" + up2, // another agent's binding proves nothing for this one
	}, ";")
	cmd := exec.Command("ip", "netns", "exec", e.router, os.Args[0], "-test.run=^TestTransparentBindingsHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"="+cfg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready <- "ok"
			}
		}
		close(ready)
	}()
	select {
	case r := <-ready:
		if r != "ok" {
			t.Fatal("the helper process ended before serving")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the helper process did not start serving")
	}

	dial := e.dialer(e.agent, nil)
	if got := rawExchange(t, dial, up5+":7000", false); got != "echo ping\n" {
		t.Errorf("raw TCP to an address bound to an allowed name: %q", got)
	}
	before := e.rawHits.Load()
	if got := rawExchange(t, dial, up3+":7000", false); got != "" {
		t.Errorf("raw TCP to an address bound only to a denied name: %q", got)
	}
	if got := rawExchange(t, dial, up2+":7000", false); got != "" {
		t.Errorf("raw TCP to an address bound only for another agent: %q", got)
	}
	if e.rawHits.Load() != before {
		t.Error("an upstream no binding opens was connected to")
	}
	// The binding is what makes bound.test (in no resolve table, and
	// DNS unreachable here) agree with its address; elsewhere it does not.
	if out, code := e.curl("--resolve", "bound.test:443:"+up5, "https://bound.test/b"); code != 0 || !strings.Contains(out, "GET /b host=bound.test") {
		t.Errorf("TLS to the address the DNS filter bound the SNI to: exit %d\n%s", code, out)
	}
	if out, code := e.curl("--resolve", "bound.test:443:"+up2, "https://bound.test/b"); code == 0 {
		t.Errorf("TLS with a bound SNI to another address got through:\n%s", out)
	}

	var evs []event
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs = evs[:0]
		f, _ := os.ReadFile(logPath)
		for _, line := range strings.Split(string(f), "\n") {
			if strings.Contains(line, `"door":"transparent"`) {
				evs = append(evs, event{"line": line})
			}
		}
		if len(evs) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	joined := ""
	for _, ev := range evs {
		joined += ev.str("line") + "\n"
	}
	for _, want := range []string{
		`"host":"raw.test","port":7000`,
		`"original_dst":"` + up3 + `:7000"`,
		`"rule":"builtin:transparent-raw"`,
		`"rule":"builtin:dst-mismatch"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("no event with %s in:\n%s", want, joined)
		}
	}
}
