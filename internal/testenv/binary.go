package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// agentgPackage is built by import path, so the build works from any
// directory inside the module (test/, bench/, the module root).
const agentgPackage = "github.com/agentg/agentg/cmd/agentg"

// oneBuild is a binary built once per process with go build into a
// temporary directory of its own. Building is slow (seconds) and its
// result cannot change while the process runs, so every test and
// benchmark of the process shares it.
type oneBuild struct {
	pkg, name string // what to build, and the file it is written to
	once      sync.Once
	dir, path string
	err       error
}

// get builds the package the first time and returns the binary's path.
func (b *oneBuild) get() (string, error) {
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "agentg-"+b.name+"-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, b.name)
		var out bytes.Buffer
		cmd := exec.Command(GoTool(), "build", "-o", b.path, b.pkg)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out.Bytes())
		}
	})
	return b.path, b.err
}

// remove deletes what get built, if anything.
func (b *oneBuild) remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// built is the agentg binary of this process: the package's only state
// besides the stdio server's build (stdio.go).
var built = oneBuild{pkg: agentgPackage, name: "agentg"}

// AgentgBinary returns the path of an agentg binary built from this
// module's cmd/agentg with `go build -o` into a temporary directory, the
// first call building it and later calls returning the same path.
// RemoveAgentgBinary deletes it; call it when the process is done (at the
// end of TestMain, or of main).
func AgentgBinary() (string, error) { return built.get() }

// RemoveAgentgBinary deletes what AgentgBinary built, if anything.
func RemoveAgentgBinary() { built.remove() }

// GoTool is the go command of the toolchain running this process when it
// can be found ($GOROOT/bin/go), else the one on PATH.
func GoTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
