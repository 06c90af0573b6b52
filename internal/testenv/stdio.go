package testenv

import (
	"bytes"
	"os"
)

// stdioServerPackage is the Go SDK stdio server the stdio tests run
// (under `agentg wrap`, or as a `command:` server).
const stdioServerPackage = "github.com/agentg/agentg/internal/testenv/stdioserver"

// StdioSecret is what the stdio server's secret tool answers with.
const StdioSecret = "AKIAIOSFODNN7EXAMPLE"

var stdioBuilt = oneBuild{pkg: stdioServerPackage, name: "stdioserver"}

// StdioServerBinary builds the Go SDK stdio server once per process and
// returns its path. Each tool call it runs appends "TOOL ARGS-JSON" to the
// file named by $STDIOSERVER_MARKS (StdioMarks reads it). Remove it with
// RemoveStdioServerBinary.
func StdioServerBinary() (string, error) { return stdioBuilt.get() }

// RemoveStdioServerBinary deletes what StdioServerBinary built.
func RemoveStdioServerBinary() { stdioBuilt.remove() }

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
