package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/agentg/agentg/rules"
)

// runPasswd is `agentg passwd`: it reads an agent's password and prints
// the hash to write in the policy (password: or a password_file). On a
// terminal the password is read twice without echo; --stdin reads one
// line from standard input, for scripts. The password itself is never
// printed.
func runPasswd(args []string, stdout, stderr io.Writer) error {
	return passwd(args, os.Stdin, stdout, stderr)
}

func passwd(args []string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := newFlagSet("passwd", "[--argon2id | --bcrypt] [--stdin]", stderr)
	useArgon := fs.Bool("argon2id", false, "hash with argon2id, t=3, m=64 MiB, p=4 (the default)")
	useBcrypt := fs.Bool("bcrypt", false, "hash with bcrypt, cost 12 (passwords of at most 72 bytes)")
	fromStdin := fs.Bool("stdin", false, "read the password from the first line of standard input, without a prompt (for scripts; also what happens when standard input is not a terminal)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *useArgon && *useBcrypt {
		fs.Usage()
		return errUsage
	}
	var pw string
	var err error
	if *fromStdin || !term.IsTerminal(int(stdin.Fd())) {
		pw, err = readPasswordLine(stdin)
	} else {
		pw, err = promptPassword(stdin, stderr)
	}
	if err != nil {
		return err
	}
	h, err := rules.HashPassword(pw, *useBcrypt)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}

// maxPasswordLine bounds what --stdin reads.
const maxPasswordLine = 4 << 10

// readPasswordLine reads the first line of r, its line ending dropped.
func readPasswordLine(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxPasswordLine+1), 512)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if len(line) > maxPasswordLine {
		return "", fmt.Errorf("the password is longer than %d bytes", maxPasswordLine)
	}
	line = trimLineEnd(line)
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

// promptPassword reads the password twice from the terminal, echo off
// (noEchoReader).
func promptPassword(tty *os.File, stderr io.Writer) (string, error) {
	r := newNoEchoReader(tty)
	a, err := r.read("Password: ", stderr)
	if err != nil {
		return "", err
	}
	if a == "" {
		return "", errors.New("empty password")
	}
	b, err := r.read("Again: ", stderr)
	if err != nil {
		return "", err
	}
	if a != b {
		return "", errors.New("the passwords differ")
	}
	return a, nil
}

// trimLineEnd drops one trailing "\n" or "\r\n".
func trimLineEnd(s string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}
