package main

import (
	"fmt"
	"io"

	"github.com/agentg/agentg/internal/buildinfo"
)

// runVersion prints which agentg this is (internal/buildinfo): the
// version, the revision it was built from, and when, in one line.
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, buildinfo.Read(version, buildTime))
	return nil
}
