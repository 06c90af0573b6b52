//go:build !linux

package proxy

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
)

// Transparent mode relies on Linux's netfilter; elsewhere the transparent
// listener refuses every connection (it cannot know where it was going)
// and a mark cannot be set.

func originalDst(net.Conn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("original destination: transparent mode needs Linux")
}

func transparentControl(string, string, syscall.RawConn) error { return nil }

func markControl(mark int) func(string, string, syscall.RawConn) error {
	if mark == 0 {
		return nil
	}
	return func(string, string, syscall.RawConn) error {
		return errors.New("SO_MARK needs Linux")
	}
}

const markSupported = false
