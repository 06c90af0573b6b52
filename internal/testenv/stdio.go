package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// stdioServerPackage is the Go SDK stdio server the stdio tests run
// (under `agentg wrap`, or as a `command:` server).
const stdioServerPackage = "github.com/agentg/agentg/internal/testenv/stdioserver"

// StdioSecret is what the stdio server's secret tool answers with.
const StdioSecret = "AKIAIOSFODNN7EXAMPLE"

var stdioBuilt struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// StdioServerBinary builds the Go SDK stdio server once per process and
// returns its path. Each tool call it runs appends "TOOL ARGS-JSON" to the
// file named by $STDIOSERVER_MARKS (StdioMarks reads it). Remove it with
// RemoveAgentgBinary's sibling RemoveStdioServerBinary.
func StdioServerBinary() (string, error) {
	stdioBuilt.once.Do(func() {
		stdioBuilt.dir, stdioBuilt.err = os.MkdirTemp("", "agentg-stdioserver-")
		if stdioBuilt.err != nil {
			return
		}
		stdioBuilt.path = filepath.Join(stdioBuilt.dir, "stdioserver")
		var out bytes.Buffer
		cmd := exec.Command(goTool(), "build", "-o", stdioBuilt.path, stdioServerPackage)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			stdioBuilt.err = fmt.Errorf("go build %s: %w\n%s", stdioServerPackage, err, out.Bytes())
		}
	})
	return stdioBuilt.path, stdioBuilt.err
}

// RemoveStdioServerBinary deletes what StdioServerBinary built.
func RemoveStdioServerBinary() {
	if stdioBuilt.dir != "" {
		os.RemoveAll(stdioBuilt.dir)
	}
}

// StdioMarks reads the calls a stdio server recorded in path: one
// "TOOL ARGS-JSON" line each, in order; none when the file is missing.
func StdioMarks(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte{'\n'}) {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out, nil
}
