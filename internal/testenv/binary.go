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

// built caches the one build of this process. It is the package's only
// state: building is slow (seconds) and its result cannot change while the
// process runs, so every test and benchmark of the process shares it.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// AgentgBinary returns the path of an agentg binary built from this
// module's cmd/agentg with `go build -o` into a temporary directory, the
// first call building it and later calls returning the same path.
// RemoveAgentgBinary deletes it; call it when the process is done (at the
// end of TestMain, or of main).
func AgentgBinary() (string, error) {
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "agentg-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "agentg")
		var out bytes.Buffer
		cmd := exec.Command(goTool(), "build", "-o", built.path, agentgPackage)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			built.err = fmt.Errorf("go build %s: %w\n%s", agentgPackage, err, out.Bytes())
		}
	})
	return built.path, built.err
}

// RemoveAgentgBinary deletes what AgentgBinary built, if anything.
func RemoveAgentgBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// goTool is the go command of the toolchain running this process when it
// can be found ($GOROOT/bin/go), else the one on PATH.
func goTool() string {
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
