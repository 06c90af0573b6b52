package testenv

import (
	"fmt"
	"net"
	"time"
)

// FreePort returns a loopback address (127.0.0.1:port) nothing listened on
// a moment ago, for a peer that cannot be told to pick its own port (Squid
// has no port 0). Another process may take it first; the peer's start then
// fails and says so.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// WaitListening dials addr until a connection succeeds or timeout passes.
func WaitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
