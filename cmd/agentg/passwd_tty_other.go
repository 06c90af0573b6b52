//go:build !linux

package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// noEchoReader reads lines from a terminal with echo off (x/term; on
// Linux, passwd_tty_linux.go turns echo off before the prompt).
type noEchoReader struct{ tty *os.File }

func newNoEchoReader(tty *os.File) *noEchoReader { return &noEchoReader{tty: tty} }

func (r *noEchoReader) read(prompt string, out io.Writer) (string, error) {
	fmt.Fprint(out, prompt)
	b, err := term.ReadPassword(int(r.tty.Fd()))
	fmt.Fprintln(out)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return string(b), nil
}
