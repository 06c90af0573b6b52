package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultAddr is where the admin API listens unless told otherwise.
const DefaultAddr = "127.0.0.1:9090"

// Off is the address that turns the admin API off.
const Off = "off"

// Network splits an admin address into what net.Listen and net.Dial
// take: "unix:/path" is a unix socket, anything else host:port over TCP.
func Network(addr string) (network, address string, err error) {
	switch {
	case addr == "" || addr == Off:
		return "", "", fmt.Errorf("admin address %q: nothing to listen on or dial", addr)
	case strings.HasPrefix(addr, "unix:"):
		p := strings.TrimPrefix(addr, "unix:")
		if p == "" {
			return "", "", fmt.Errorf("admin address %q: unix: needs a socket path", addr)
		}
		return "unix", p, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", fmt.Errorf("admin address %q: want host:port, unix:/path or off: %w", addr, err)
	}
	return "tcp", addr, nil
}

// Listen opens the admin listener at addr ("host:port", "unix:/path").
// A unix socket is made mode 0600; a stale socket file left by an agentg
// that died is replaced, but one something still listens on is not.
func Listen(addr string) (net.Listener, error) {
	network, address, err := Network(addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := removeStaleSocket(address); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w (set --admin ADDR, or --admin off)", addr, err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("admin listen %s: %w", addr, err)
		}
	}
	return ln, nil
}

func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if st.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("admin socket %s: exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: another process listens on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("admin socket %s: remove the stale socket: %w", path, err)
	}
	return nil
}

// IsLoopback reports whether a TCP listener's address is a loopback one;
// serve warns when the admin API listens elsewhere (the token then
// crosses the network in plain HTTP).
func IsLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return !ok || t.IP.IsLoopback()
}
