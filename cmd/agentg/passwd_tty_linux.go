//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// noEchoReader reads lines from a terminal with echo off. Echo goes off
// before the prompt is shown, as readpassphrase(3) does, so that what a
// person types as soon as the prompt appears is never echoed; and it is
// restored on return and on SIGINT or SIGTERM, which would otherwise
// leave the terminal mute.
type noEchoReader struct {
	tty *os.File
	br  *bufio.Reader
}

func newNoEchoReader(tty *os.File) *noEchoReader {
	return &noEchoReader{tty: tty, br: bufio.NewReaderSize(tty, 512)}
}

func (r *noEchoReader) read(prompt string, out io.Writer) (string, error) {
	fd := int(r.tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	mute := *old
	mute.Lflag &^= unix.ECHO
	mute.Lflag |= unix.ICANON | unix.ISIG
	mute.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &mute); err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	restore := func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	go func() {
		select {
		case <-sig:
			restore()
			fmt.Fprintln(out)
			os.Exit(130)
		case <-stop:
		}
	}()
	defer func() {
		signal.Stop(sig)
		close(stop)
		restore()
	}()
	fmt.Fprint(out, prompt)
	line, err := r.br.ReadString('\n')
	fmt.Fprintln(out)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if len(line) > maxPasswordLine {
		return "", fmt.Errorf("the password is longer than %d bytes", maxPasswordLine)
	}
	return trimLineEnd(line), nil
}
